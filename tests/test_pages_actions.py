"""Every run-page action works with htmx (a fragment) and with JavaScript off (a redirect)."""

import pytest

from checklists import services
from checklists.models import (
    AuditEvent,
    Note,
    Run,
    RunItem,
    Signoff,
    VerificationResult,
)

from .stories import go_live

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"}


@pytest.fixture
def setup(make_user, small_template, broker_at, throwaway_redis):
    broker_at(throwaway_redis.url)  # verify publishes here; no worker needed to see it queued
    lead = make_user("lia", "lead", "Tech Lead")
    make_user("max", "member")
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=lead)
    return run, lead


def first(run):
    return run.items.order_by("position").first()


ACTIONS = {
    "tick": (lambda r: (f"/runs/{r.pk}/items/{first(r).pk}/state", {"state": "done"}), lambda r: first(r).state == "done"),
    "block with reason": (lambda r: (f"/runs/{r.pk}/items/{first(r).pk}/state", {"state": "blocked", "reason": "waiting"}), lambda r: first(r).state == "blocked"),
    "in progress": (lambda r: (f"/runs/{r.pk}/items/{first(r).pk}/state", {"state": "in_progress"}), lambda r: first(r).state == "in_progress"),
    "take it": (lambda r: (f"/runs/{r.pk}/items/{first(r).pk}/assign", {"assignee": "me"}), lambda r: first(r).assignee is not None),
    "assign a teammate": (lambda r: (f"/runs/{r.pk}/items/{first(r).pk}/assign", {"assignee": "max"}), lambda r: first(r).assignee.username == "max"),
    "item note": (lambda r: (f"/runs/{r.pk}/notes", {"item": first(r).pk, "body": "done by hand"}), lambda r: Note.objects.filter(item__isnull=False).exists()),
    "run note": (lambda r: (f"/runs/{r.pk}/notes", {"body": "window opens"}), lambda r: Note.objects.filter(item__isnull=True).exists()),
    "skip section": (lambda r: (f"/runs/{r.pk}/sections/{r.sections.get(title='Deploy').pk}/skip", {"reason": "config only"}), lambda r: r.items.filter(state="skipped").count() == 2),
    "verify one": (lambda r: (f"/runs/{r.pk}/verify", {"item": r.items.exclude(check_kind="").first().pk}), lambda r: VerificationResult.objects.count() == 1),
    "verify all": (lambda r: (f"/runs/{r.pk}/verify", {}), lambda r: VerificationResult.objects.count() == 2),
    "reject": (lambda r: (f"/runs/{r.pk}/signoffs", {"role": "Tech Lead", "decision": "reject", "comment": "not yet"}), lambda r: Signoff.objects.filter(decision="reject").exists()),
    "abort": (lambda r: (f"/runs/{r.pk}/status", {"status": "aborted", "reason": "bad build"}), lambda r: Run.objects.get(pk=r.pk).status == "aborted"),
    "schedule": (lambda r: (f"/runs/{r.pk}/schedule", {"every_minutes": "30"}), lambda r: services.schedule_get(run=r) == 30),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("mode", ["htmx", "plain"])
def test_action_works_in_both_modes(client, setup, action, mode):
    run, lead = setup
    client.force_login(lead)
    request, effect = ACTIONS[action]
    url, data = request(run)

    answer = client.post(url, data, headers=HTMX if mode == "htmx" else {})

    if mode == "htmx":
        assert answer.status_code in (200, 204), answer.content[:300]
    else:
        assert answer.status_code == 302
        assert answer["Location"].startswith(f"/runs/{run.pk}/")
    assert effect(run)
    assert AuditEvent.objects.filter(run=run).count() >= 1


def test_a_locked_item_offers_no_toggle_after_go_live(client, setup):
    run, lead = setup
    go_live(run)
    client.force_login(lead)

    html = client.get(run.get_absolute_url()).content.decode()

    tag = html.split(f'data-item-id="{first(run).pk}"')[1].split('data-action="toggle"')[1].split(">")[0]
    assert "disabled" in tag
    after = run.items.get(after_go_live=True)
    after_tag = html.split(f'data-item-id="{after.pk}"')[1].split('data-action="toggle"')[1].split(">")[0]
    assert "disabled" not in after_tag


def test_earlier_results_of_an_item(client, setup):
    run, lead = setup
    client.force_login(lead)
    item = run.items.exclude(check_kind="").first()
    client.post(f"/runs/{run.pk}/verify", {"item": item.pk})
    client.post(f"/runs/{run.pk}/verify", {"item": item.pk})

    fragment = client.get(f"/runs/{run.pk}/items/{item.pk}/results", headers=HTMX).content.decode()
    page = client.get(f"/runs/{run.pk}/items/{item.pk}/results")

    assert fragment.count("<li") == 2 and "Queued" in fragment
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert RunItem.objects.get(pk=item.pk).state == "todo"


def test_verify_a_whole_section(client, setup):
    run, lead = setup
    client.force_login(lead)
    section = run.sections.get(title="Before")

    page = client.get(run.get_absolute_url()).content.decode()
    answer = client.post(f"/runs/{run.pk}/verify", {"section": section.pk})

    assert "Verify this section (1)" in page
    assert answer.status_code == 302
    assert list(VerificationResult.objects.values_list("item__section_id", flat=True)) == [section.pk]
