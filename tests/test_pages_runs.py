"""Engineers work the run page: with htmx, and with JavaScript off (plain posts)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checklists import markdown as md
from checklists import services
from checklists.models import AuditEvent, Note, Run, RunItem

from .stories import go_live

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"}


@pytest.fixture
def run(small_template, member):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="2.4.0", actor=member)
    return run


@pytest.fixture
def browser(client, member):
    client.force_login(member)
    return client


def first_item(run) -> RunItem:
    return run.items.order_by("position").first()


def test_run_page_shows_every_item_with_its_state(browser, run):
    page = browser.get(run.get_absolute_url())

    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("data-item-id=") == 6
    assert 'data-state="todo"' in html
    assert html.count('data-action="toggle"') == 6
    assert "Small Launch" in html and "2.4.0" in html


def test_ticking_with_htmx_answers_the_item_and_the_progress(browser, run):
    item = first_item(run)

    answer = browser.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers=HTMX)

    html = answer.content.decode()
    assert answer.status_code == 200
    assert f'data-item-id="{item.pk}" data-state="done"' in html
    assert 'id="run-progress"' in html and 'hx-swap-oob="true"' in html
    assert "<strong>1</strong> done" in html
    assert RunItem.objects.get(pk=item.pk).state == "done"


def test_ticking_without_javascript_redirects_back_to_the_item(browser, run):
    item = first_item(run)

    answer = browser.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"})

    assert answer.status_code == 302
    assert answer["Location"] == f"/runs/{run.pk}/#item-{item.pk}"
    assert RunItem.objects.get(pk=item.pk).state == "done"


def test_blocking_without_a_reason_is_refused_in_place(browser, run):
    item = first_item(run)

    answer = browser.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "blocked"}, headers=HTMX)

    assert answer.status_code == 400
    assert answer["HX-Retarget"] == f"#item-{item.pk} .item-error"
    assert "reason is required" in answer.content.decode()
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_blocking_without_a_reason_and_without_javascript_flashes_the_message(browser, run):
    item = first_item(run)

    answer = browser.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "blocked"}, follow=True)

    assert "reason is required" in answer.content.decode()
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_viewer_cannot_tick(client, make_user, run):
    client.force_login(make_user("vic", "viewer"))
    item = first_item(run)

    answer = client.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers=HTMX)

    assert answer.status_code == 403
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_anonymous_is_sent_to_login(client, run):
    answer = client.get(run.get_absolute_url())

    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")


def test_csrf_is_required_for_page_posts(member, run):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    item = first_item(run)

    answer = strict.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers=HTMX)

    assert answer.status_code == 403
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_notes_are_rendered_sanitized(browser, run):
    item = first_item(run)

    browser.post(f"/runs/{run.pk}/notes", {"item": item.pk, "body": "**Deployed** <script>alert(1)</script>"}, headers=HTMX)
    page = browser.get(run.get_absolute_url()).content.decode()

    assert "<strong>Deployed</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert Note.objects.get().item_id == item.pk


def test_taking_an_item_assigns_it_to_me(browser, run, member):
    item = first_item(run)

    browser.post(f"/runs/{run.pk}/items/{item.pk}/assign", {"assignee": "me"}, headers=HTMX)

    assert RunItem.objects.get(pk=item.pk).assignee == member
    mine = browser.get(run.get_absolute_url() + "?show=mine").content.decode()
    assert mine.count("data-item-id=") == 1


def test_filters_show_open_and_blocked_and_text(browser, run, member):
    items = list(run.items.order_by("position"))
    services.run_item_set_state(item=items[0], state="done", actor=member)
    services.run_item_set_state(item=items[1], state="blocked", actor=member, reason="waiting on ops")

    open_page = browser.get(run.get_absolute_url() + "?show=open").content.decode()
    blocked_page = browser.get(run.get_absolute_url() + "?show=blocked").content.decode()
    text_page = browser.get(run.get_absolute_url() + "?q=health").content.decode()

    assert open_page.count("data-item-id=") == 5
    assert blocked_page.count("data-item-id=") == 1
    assert text_page.count("data-item-id=") == 1


def test_skipping_a_section_with_one_reason(browser, run):
    section = run.sections.get(title="Deploy")

    answer = browser.post(f"/runs/{run.pk}/sections/{section.pk}/skip", {"reason": "no deploy needed: config only"})

    assert answer.status_code == 302
    states = set(run.items.filter(section=section).values_list("state", "reason"))
    assert states == {("skipped", "no deploy needed: config only")}
    assert AuditEvent.objects.filter(action="item.state").count() == 2


def test_poll_is_an_empty_204_when_nothing_changed(browser, run):
    run.refresh_from_db()

    with CaptureQueriesContext(connection) as queries:
        answer = browser.get(f"/runs/{run.pk}/poll?rev={run.revision}")

    assert answer.status_code == 204
    assert answer.content == b""
    assert len([q for q in queries if "checklists_run" in q["sql"]]) == 1


def test_poll_sends_only_the_changed_items(browser, run, make_user):
    run.refresh_from_db()
    before = run.revision
    other = make_user("ola", "member")
    item = first_item(run)
    services.run_item_set_state(item=item, state="in_progress", actor=other)

    answer = browser.get(f"/runs/{run.pk}/poll?rev={before}")

    html = answer.content.decode()
    assert answer.status_code == 200
    assert html.count("data-item-id=") == 1
    assert f'data-item-id="{item.pk}" data-state="in_progress"' in html
    assert re.search(r'id="poller"[^>]*rev=%d' % (before + 1), html)


def build_run(size: int, actor):
    body = "# Big\n\n" + "".join(
        f"## Section {s}\n\n" + "".join(f"- [ ] item {s}.{i}\n" for i in range(size // 10)) + "\n" for s in range(10)
    )
    version = services.template_import(md.parse(body), actor=actor)
    environment = services.environment_get_or_create("big", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label=str(size), actor=actor)
    items = list(run.items.order_by("position"))
    for item in items[:: max(1, size // 10)]:
        services.run_item_set_state(item=item, state="blocked", actor=actor, reason="x")
        services.note_add(run=run, body="note", actor=actor, item=item)
    return run


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_run_page_and_poll_cost_the_same_queries_for_30_and_300_items(browser, member, lead):
    small, big = build_run(30, lead), build_run(300, lead)

    assert count_queries(browser, small.get_absolute_url()) == count_queries(browser, big.get_absolute_url())
    assert count_queries(browser, f"/runs/{small.pk}/poll?rev=0") == count_queries(browser, f"/runs/{big.pk}/poll?rev=0")


def test_start_a_run_from_the_page(browser, small_template):
    answer = browser.post(
        "/runs/new",
        {"version": small_template.pk, "project": "shop", "environment": "staging", "version_label": "3.0",
         "var_name": ["base_url", ""], "var_value": ["https://staging.example.test", ""], "confirm": "1"},
    )

    run = Run.objects.get()
    assert answer.status_code == 302 and answer["Location"] == run.get_absolute_url()
    assert run.variables_dict() == {"base_url": "https://staging.example.test"}


def test_starting_a_run_without_a_version_label_says_so(browser, small_template):
    answer = browser.post("/runs/new", {"version": small_template.pk, "project": "shop", "environment": "staging", "version_label": "", "confirm": "1"})

    assert answer.status_code == 400
    assert "version label" in answer.content.decode()
    assert Run.objects.count() == 0


def test_an_htmx_request_after_the_session_expired_goes_to_the_login_page(client, run):
    item = first_item(run)

    answer = client.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers=HTMX)
    poll = client.get(f"/runs/{run.pk}/poll?rev=0", headers=HTMX)

    assert answer.status_code == poll.status_code == 204
    assert answer["HX-Redirect"].startswith("/accounts/login/")
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_the_poll_reloads_the_page_when_the_run_went_live(browser, run):
    run.refresh_from_db()
    seen = run.revision
    go_live(run)

    answer = browser.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress")

    assert answer.status_code == 204
    assert answer["HX-Refresh"] == "true"


def test_a_parent_section_counts_its_subsections_items(browser, lead, member):
    text = "# Nested\n\n## Pre-Deployment\n\n### Infra\n\n- [ ] a\n- [ ] b\n\n### Data\n\n- [ ] c\n"
    version = services.template_import(md.parse(text), actor=lead)
    environment = services.environment_get_or_create("nest", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    services.run_item_set_state(item=run.items.get(text="a"), state="done", actor=lead)

    html = browser.get(run.get_absolute_url()).content.decode()

    parent = run.sections.get(title="Pre-Deployment")
    assert re.search(rf'id="section-progress-{parent.pk}"[^>]*>1/3<', html)
