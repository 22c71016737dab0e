"""Lena and Sam both open the editor on v2 of a template. Sam saves first (v3). When Lena
saves, the editor refuses to write over Sam's version: it says so, keeps her text, saves
nothing and offers the editor of v3."""

import re

import pytest
from django.test import Client

from checklists.models import ChecklistTemplate

pytestmark = pytest.mark.django_db


def open_editor(browser, template):
    page = browser.get(f"/templates/{template.pk}/edit")
    html = page.content.decode()
    base = re.search(r'name="base_version" value="(\d+)"', html).group(1)
    return {"markdown": page.context["markdown"], "base_version": base}


def save(browser, template, form, **changes):
    data = dict(form)
    for old, new in changes.items():
        data["markdown"] = data["markdown"].replace(old, new)
    return browser.post(f"/templates/{template.pk}/edit", {**data, "save": "1"})


@pytest.fixture
def template_at_v2(lead_browser, small_template):
    template = small_template.template
    answer = save(lead_browser, template, open_editor(lead_browser, template), **{"Tag the release": "Tag the release candidate"})
    assert answer.status_code == 302
    return ChecklistTemplate.objects.get(pk=template.pk)


@pytest.fixture
def sam(make_user):
    browser = Client()
    browser.force_login(make_user("sam", "lead"))
    return browser


def numbers(template):
    return list(template.versions.order_by("number").values_list("number", flat=True))


def test_saving_over_a_version_saved_meanwhile_is_refused(lead_browser, sam, template_at_v2):
    template = template_at_v2
    lenas_form = open_editor(lead_browser, template)
    sams_form = open_editor(sam, template)
    assert lenas_form["base_version"] == sams_form["base_version"] == "2"

    sams_save = save(sam, template, sams_form, **{"Deploy the build": "Deploy the signed build"})
    lenas_save = save(lead_browser, template, lenas_form, **{"Health endpoint answers": "Health endpoint answers 200"})

    assert sams_save.status_code == 302
    assert lenas_save.status_code == 409
    html = lenas_save.content.decode()
    assert "v3 was saved while you edited v2" in html
    assert f'href="/templates/{template.pk}/edit"' in html
    assert "Health endpoint answers 200" in html  # her text is still there to copy
    assert numbers(template) == [1, 2, 3]
    latest = template.latest_version()
    assert latest.items.filter(text="Deploy the signed build").exists()
    assert not latest.items.filter(text="Health endpoint answers 200").exists()


def test_after_reloading_the_latest_she_can_save(lead_browser, sam, template_at_v2):
    template = template_at_v2
    lenas_form = open_editor(lead_browser, template)
    save(sam, template, open_editor(sam, template), **{"Deploy the build": "Deploy the signed build"})
    assert save(lead_browser, template, lenas_form, **{"Health endpoint answers": "Health endpoint answers 200"}).status_code == 409

    reloaded = open_editor(lead_browser, template)  # the link in the refusal
    answer = save(lead_browser, template, reloaded, **{"Health endpoint answers": "Health endpoint answers 200"})

    assert reloaded["base_version"] == "3"
    assert answer.status_code == 302
    assert numbers(template) == [1, 2, 3, 4]
    v4 = template.latest_version()
    assert v4.items.filter(text="Deploy the signed build").exists()
    assert v4.items.filter(text="Health endpoint answers 200").exists()


def test_outline_buttons_keep_the_version_the_editor_was_opened_from(lead_browser, sam, template_at_v2):
    template = template_at_v2
    form = open_editor(lead_browser, template)
    save(sam, template, open_editor(sam, template), **{"Deploy the build": "Deploy the signed build"})

    moved = lead_browser.post(f"/templates/{template.pk}/edit", {**form, "op": "down:n1"})

    assert moved.status_code == 200
    assert 'name="base_version" value="2"' in moved.content.decode()
    form["markdown"] = moved.context["markdown"]
    assert save(lead_browser, template, form).status_code == 409
    assert numbers(template) == [1, 2, 3]


def test_with_htmx_the_refusal_replaces_the_editor_and_a_save_navigates(lead_browser, sam, template_at_v2):
    template = template_at_v2
    htmx = {"HX-Request": "true", "HX-Target": "editor"}
    lenas_form = open_editor(lead_browser, template)
    save(sam, template, open_editor(sam, template), **{"Deploy the build": "Deploy the signed build"})

    refused = lead_browser.post(f"/templates/{template.pk}/edit", {**lenas_form, "save": "1"}, headers=htmx)
    saved = lead_browser.post(f"/templates/{template.pk}/edit", {**open_editor(lead_browser, template), "save": "1"}, headers=htmx)

    assert refused.status_code == 409
    assert refused["HX-Retarget"] == "#editor" and refused["HX-Reswap"] == "outerHTML"
    assert refused.content.decode().lstrip().startswith('<form id="editor"')
    assert "v3 was saved while you edited v2" in refused.content.decode()
    assert saved.status_code == 200 and saved["HX-Redirect"] == f"/templates/{template.pk}/"
    assert numbers(template) == [1, 2, 3, 4]
