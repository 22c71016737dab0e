"""A lead prepares templates in the browser: import with a preview, edit, archive."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from checklists.models import ChecklistTemplate, Run, TemplateVersion

from .conftest import SEEDS, SMALL_CHECKLIST

pytestmark = pytest.mark.django_db


def test_preview_shows_counts_and_saves_nothing(lead_browser):
    answer = lead_browser.post("/templates/import", {"markdown": SMALL_CHECKLIST, "preview": "1"})

    html = answer.content.decode()
    assert answer.status_code == 200
    assert "<strong>6</strong> items" in html and "<strong>2</strong> checks" in html
    assert "Tech Lead, Security Lead" in html
    assert ChecklistTemplate.objects.count() == 0


def test_preview_of_a_broken_file_names_the_line(lead_browser):
    answer = lead_browser.post("/templates/import", {"markdown": "# X\n\n- [ ] a <!-- check: tcp host=db port=99999 -->\n", "save": "1"})

    assert answer.status_code == 400
    assert "line 3" in answer.content.decode()
    assert ChecklistTemplate.objects.count() == 0


def test_uploading_a_seed_imports_it(lead_browser):
    upload = SimpleUploadedFile("llm.md", (SEEDS / "llm-gateway-production.md").read_bytes(), content_type="text/markdown")

    answer = lead_browser.post("/templates/import", {"file": upload, "save": "1"})

    template = ChecklistTemplate.objects.get()
    assert answer.status_code == 302 and answer["Location"] == template.get_absolute_url()
    assert template.latest_version().item_count == 204


def test_uploading_a_binary_file_is_refused(lead_browser):
    upload = SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00", content_type="image/png")

    answer = lead_browser.post("/templates/import", {"file": upload, "save": "1"})

    assert answer.status_code == 400
    assert "not a text file" in answer.content.decode()
    assert ChecklistTemplate.objects.count() == 0


def test_member_cannot_open_the_import_page(client, member):
    client.force_login(member)

    assert client.get("/templates/import").status_code == 403


def edit(browser, template, markdown, **extra):
    return browser.post(f"/templates/{template.pk}/edit", {"markdown": markdown, **extra})


def test_editor_buttons_move_nest_and_remove_items(lead_browser, small_template):
    template = small_template.template
    text = lead_browser.get(f"/templates/{template.pk}/edit").context["markdown"]

    moved = edit(lead_browser, template, text, op="down:n1").context["markdown"]
    assert moved.index("Backups are recent") < moved.index("Tag the release")

    nested = edit(lead_browser, template, moved, op="indent:n3").context["markdown"]
    assert "\n  - [ ] Tag the release" in nested

    removed = edit(lead_browser, template, nested, op="remove:n3").context["markdown"]
    assert "Tag the release" not in removed


def test_attaching_a_check_validates_it_on_the_spot(lead_browser, small_template):
    template = small_template.template
    text = lead_browser.get(f"/templates/{template.pk}/edit").context["markdown"]

    bad = edit(lead_browser, template, text, op="check:n1", **{"kind-n1": "tcp", "params-n1": "host=db port=99999"})
    good = edit(lead_browser, template, text, op="check:n1", **{"kind-n1": "tls", "params-n1": 'host="{{ host }}" min_days=14'})

    assert "port" in bad.context["edit_error"]
    assert bad.context["markdown"] == text
    assert '- [ ] Tag the release <!-- check: tls host="{{ host }}" min_days=14 -->' in good.context["markdown"]


def test_saving_an_edit_makes_a_new_version_and_running_runs_keep_theirs(lead_browser, small_template, lead):
    from checklists import services

    template = small_template.template
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=lead)
    text = lead_browser.get(f"/templates/{template.pk}/edit").context["markdown"]

    answer = edit(lead_browser, template, text.replace("Tag the release", "Tag and sign the release"), save="1")

    assert answer.status_code == 302
    assert list(template.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert template.latest_version().items.filter(text="Tag and sign the release").exists()
    assert Run.objects.get().items.filter(text="Tag the release").exists()


def test_sign_off_roles_are_edited_in_the_editor(lead_browser, small_template):
    template = small_template.template
    text = lead_browser.get(f"/templates/{template.pk}/edit").context["markdown"]

    changed = edit(lead_browser, template, text, op="roles:", text="Tech Lead, DevOps, Product Manager").context["markdown"]
    edit(lead_browser, template, changed, save="1")

    assert template.latest_version().required_roles == ["Tech Lead", "DevOps", "Product Manager"]


def test_a_suggested_check_is_offered_but_not_attached(lead_browser, lead):
    from checklists import markdown as md
    from checklists import services

    text = "# S\n\n- [ ] Health answers\n\n  ```bash\n  curl -f https://api.example.com/health\n  ```\n"
    version = services.template_import(md.parse(text), actor=lead)
    page = lead_browser.get(f"/templates/{version.template_id}/edit")

    html = page.content.decode()
    assert "Suggested: http check" in html
    assert "https://api.example.com/health" in html
    assert version.check_count == 0 and "check:" not in page.context["markdown"]


def test_archiving_hides_a_template_and_keeps_its_runs(lead_browser, small_template, lead):
    from checklists import services

    environment = services.environment_get_or_create("shop", "prod")
    services.run_start(version=small_template, environment=environment, version_label="1", actor=lead)

    lead_browser.post(f"/templates/{small_template.template_id}/archive", {"archive": "1"}, follow=True)

    assert "Small Launch" not in lead_browser.get("/templates/").content.decode()
    assert "Small Launch" in lead_browser.get("/templates/?archived=1").content.decode()
    assert Run.objects.get().items.count() == 6


def test_template_detail_and_export_pages(lead_browser, small_template):
    detail = lead_browser.get(f"/templates/{small_template.template_id}/")
    exported = lead_browser.get(f"/templates/{small_template.template_id}/export.md")

    assert "Health endpoint answers" in detail.content.decode()
    assert exported["Content-Disposition"].startswith("attachment")
    assert exported.content.decode().startswith("# Small Launch")
    assert TemplateVersion.objects.count() == 1


def test_dashboard_and_history(client, make_user, small_template, lead):
    from checklists import services

    manager = make_user("meg", "manager")
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="7.1", actor=lead)
    client.force_login(manager)

    dashboard = client.get("/").content.decode()
    history = client.get("/history/?project=shop")
    csv_export = client.get("/history/?format=csv")

    assert "7.1" in dashboard
    assert history.status_code == 200 and "<strong>1</strong> runs" in history.content.decode()
    assert csv_export.content.decode().count("\n") == 2


def test_history_is_for_managers_and_leads(client, member):
    client.force_login(member)

    assert client.get("/history/").status_code == 403


def test_an_uploaded_file_s_heading_names_the_template_not_its_file_name(lead_browser):
    upload = SimpleUploadedFile("final-v2 (copy).md", SMALL_CHECKLIST.encode(), content_type="text/markdown")

    answer = lead_browser.post("/templates/import", {"file": upload, "save": "1"})

    assert answer.status_code == 302
    assert ChecklistTemplate.objects.get().name == "Small Launch"


def test_after_previewing_an_upload_the_import_keeps_the_heading(lead_browser):
    upload = SimpleUploadedFile("final-v2 (copy).md", SMALL_CHECKLIST.encode(), content_type="text/markdown")
    preview = lead_browser.post("/templates/import", {"file": upload, "preview": "1"})
    # What the browser sends on "Import": the form as the preview filled it in, no file.
    form = {"name": preview.context["name"], "markdown": preview.context["markdown"], "save": "1"}

    lead_browser.post("/templates/import", form)

    assert preview.context["name"] == ""
    assert ChecklistTemplate.objects.get().name == "Small Launch"


def test_an_uploaded_file_without_a_heading_takes_its_file_name(lead_browser):
    upload = SimpleUploadedFile("db-upgrade.md", b"## Before\n\n- [ ] Snapshot the database\n", content_type="text/markdown")
    preview = lead_browser.post("/templates/import", {"file": upload, "preview": "1"})

    lead_browser.post("/templates/import", {"name": preview.context["name"], "markdown": preview.context["markdown"], "save": "1"})

    assert preview.context["name"] == "db-upgrade"
    assert ChecklistTemplate.objects.get().name == "db-upgrade"


def test_a_name_typed_in_the_form_still_wins(lead_browser):
    upload = SimpleUploadedFile("final.md", SMALL_CHECKLIST.encode(), content_type="text/markdown")

    lead_browser.post("/templates/import", {"file": upload, "name": "Shop launch", "save": "1"})

    assert ChecklistTemplate.objects.get().name == "Shop launch"


SUGGESTIBLE = """\
# Cache Launch

## Checks

- [ ] Health answers: `curl -f https://your-domain.com/health`
- [ ] Redis answers: `redis-cli -h localhost ping`
- [ ] Write the release notes
"""


def test_the_import_preview_offers_the_suggested_checks_and_attaches_the_ticked_ones(lead_browser):
    import re

    from checklists.models import TemplateItem

    preview = lead_browser.post("/templates/import", {"markdown": SUGGESTIBLE, "preview": "1"}).content.decode()
    keys = re.findall(r'name="attach" value="(n\d+)"', preview)
    assert "Attach all 2 suggested checks" in preview and len(keys) == 2
    assert "from “curl -f https://your-domain.com/health" in preview

    lead_browser.post("/templates/import", {"markdown": SUGGESTIBLE, "save": "1", "suggestions_shown": "1", "attach": keys[:1]})

    checked = TemplateItem.objects.exclude(check_kind="")
    assert [(i.text.split(":")[0], i.check_kind) for i in checked] == [("Health answers", "http")]
