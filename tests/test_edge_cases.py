"""The corners users hit on a real launch day."""

from datetime import timedelta

import pytest
from django.utils import timezone

from checklists import services
from checklists.models import AuditEvent, Run, RunItem, Signoff, VerificationResult

from .stories import verdict

pytestmark = pytest.mark.django_db


def finish_required(run, actor):
    for item in run.items.filter(required=True):
        services.run_item_set_state(item=item, state="done", actor=actor)




def test_a_check_still_running_holds_the_gate(api_as, make_user, run, member):
    tess = make_user("tess", "Tech Lead")
    finish_required(run, member)
    checked = run.items.filter(required=True).exclude(check_kind="").first()
    verdict(checked, "failed")
    verdict(checked, "queued")

    answer = api_as(tess).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})

    assert answer.status_code == 409
    assert answer.json_body["open"][0]["problem"] == "verification in progress"


def test_a_check_that_ended_in_error_holds_the_gate(api_as, make_user, run, member):
    tess = make_user("tess", "Tech Lead")
    finish_required(run, member)
    verdict(run.items.filter(required=True).exclude(check_kind="").first(), "error")

    answer = api_as(tess).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})

    assert answer.status_code == 409
    assert answer.json_body["open"][0]["problem"] == "verification error"


def test_someone_who_only_holds_a_signoff_role_can_read_and_sign(api_as, make_user, run, member):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("grant", "sol", "Security Lead", "--create")
    sol = get_user_model().objects.get(username="sol")
    finish_required(run, member)

    assert api_as(sol).get(f"/api/v1/runs/{run.pk}").status_code == 200
    assert api_as(sol).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Security Lead", "decision": "approve"}).status_code == 201


def test_a_passing_check_does_not_overrule_a_person_who_blocked_the_item(run, member):
    item = run.items.exclude(check_kind="").first()
    queued = verdict(item, "running")
    services.run_item_set_state(item=item, state="blocked", actor=member, reason="200 but it is the maintenance page")

    services.verification_record(result_id=queued.pk, status="passed", message="200 OK")

    item.refresh_from_db()
    assert (item.state, item.reason) == ("blocked", "200 but it is the maintenance page")
    assert VerificationResult.objects.get(pk=queued.pk).applied_at is not None


def test_the_sweep_applies_a_result_whose_worker_died_before_applying_it(run):
    item = run.items.exclude(check_kind="").first()
    orphan = verdict(item, "running")
    # The worker wrote its verdict two minutes ago and died before applying it.
    VerificationResult.objects.filter(pk=orphan.pk).update(
        status="passed", message="200 OK", finished_at=timezone.now() - timedelta(minutes=2)
    )

    services.verification_sweep()

    assert VerificationResult.objects.get(pk=orphan.pk).applied_at is not None
    assert RunItem.objects.get(pk=item.pk).state == "done"
    assert AuditEvent.objects.filter(item=item, action="verification.result").count() == 1


def test_reposting_the_same_state_with_a_note_keeps_approvals(api_as, make_user, run, member):
    tess = make_user("tess", "Tech Lead")
    finish_required(run, member)
    api_as(tess).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})
    item = run.items.filter(required=True).first()

    api_as(member).post(f"/api/v1/runs/{run.pk}/items/{item.pk}", {"state": "done", "note": "build 42"})

    assert not Signoff.objects.get().stale
    assert AuditEvent.objects.filter(item=item, action="item.state").count() == 1


def test_a_pipeline_sending_a_bad_variable_name_gets_a_400_and_nothing_is_opened(api_as, member, small_template):
    answer = api_as(member).post(
        "/api/v1/runs", {"template": "small-launch", "project": "p", "environment": "e", "version": "1", "variables": {"base url": "x"}}
    )

    assert answer.status_code == 400
    assert "variable name" in answer.json_body["error"]
    assert Run.objects.count() == 0


def test_an_overlong_idempotency_key_is_a_400(api_as, member, small_template):
    answer = api_as(member).post(
        "/api/v1/runs", {"template": "small-launch", "project": "p", "environment": "e", "version": "1"}, headers={"Idempotency-Key": "k" * 300}
    )

    assert answer.status_code == 400
    assert Run.objects.count() == 0


def test_an_empty_items_list_is_refused_and_a_missing_body_verifies_all(api_as, member, run, broker_at, throwaway_redis):
    broker_at(throwaway_redis.url)
    client = api_as(member)

    empty = client.post(f"/api/v1/runs/{run.pk}/verify", {"items": []})
    no_body = client.client.post(f"/api/v1/runs/{run.pk}/verify", data="", content_type="application/json", headers=client.headers)

    assert empty.status_code == 400
    assert no_body.status_code == 202, no_body.content
    assert VerificationResult.objects.count() == 2


def test_a_run_that_never_went_live_cannot_be_rolled_back(api_as, lead, run):
    answer = api_as(lead).post(f"/api/v1/runs/{run.pk}/status", {"status": "rolled_back", "reason": "oops"})

    assert answer.status_code == 409
    assert Run.objects.get(pk=run.pk).status == "in_progress"


def test_an_archived_template_cannot_start_a_run_from_the_page(client, member, small_template, lead):
    services.template_archive(small_template.template, actor=lead)
    client.force_login(member)

    answer = client.post("/runs/new", {"version": small_template.pk, "project": "p", "environment": "e", "version_label": "1", "confirm": "1"})

    assert answer.status_code == 400
    assert "archived" in answer.content.decode()
    assert Run.objects.count() == 0


def test_csv_exports_never_carry_a_spreadsheet_formula(api_as, member, run):
    services.note_add(run=run, body="=HYPERLINK(\"http://evil\")", actor=member, item=run.items.first())

    csv_text = api_as(member).get(f"/api/v1/runs/{run.pk}/export", format="csv").content.decode()

    assert "'mo: =HYPERLINK" in csv_text or "'=HYPERLINK" in csv_text or "mo: =HYPERLINK" in csv_text
    assert ",=HYPERLINK" not in csv_text


def test_history_by_template_does_not_sweep_in_runs_whose_template_was_deleted(api_as, make_user, member, lead):
    from checklists import markdown as md

    kept = services.template_import(md.parse("# Kept\n\n- [ ] a\n"), actor=lead)
    gone = services.template_import(md.parse("# Gone\n\n- [ ] a\n"), actor=lead)
    environment = services.environment_get_or_create("shop", "production")
    for version in (kept, gone):
        services.run_start(version=version, environment=environment, version_label="1", actor=member)
    gone.template.delete()

    page = api_as(make_user("meg", "manager")).get("/api/v1/runs", template="kept").json_body
    by_name = api_as(make_user("meg2", "manager")).get("/api/v1/runs", template="Gone").json_body

    assert [r["template"] for r in page["results"]] == ["Kept"]
    assert [r["template"] for r in by_name["results"]] == ["Gone"]
