"""Leads sign off a launch by role; the gate, staleness and go-live hold through the API."""

import pytest

from checklists import services
from checklists.models import AuditEvent, Run, Signoff

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    return {
        "tess": make_user("tess", "member", "Tech Lead"),
        "sam": make_user("sam", "member", "Security Lead"),
        "lena": make_user("lena2", "lead"),
        "mo": make_user("mo2", "member"),
    }


@pytest.fixture
def run(small_template, people):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="9.9", actor=people["mo"])
    return run


def finish_required(run, actor):
    for item in run.items.filter(required=True):
        services.run_item_set_state(item=item, state="done", actor=actor)


def sign(api_as, user, run, **body):
    return api_as(user).post(f"/api/v1/runs/{run.pk}/signoffs", body)


def test_a_member_cannot_sign_for_the_tech_lead(api_as, people, run):
    finish_required(run, people["mo"])

    answer = sign(api_as, people["mo"], run, role="Tech Lead", decision="approve")

    assert answer.status_code == 403
    assert "Tech Lead" in answer.json_body["error"]
    assert Signoff.objects.count() == 0


def test_not_holding_the_role_is_refused_before_the_gate_is_checked(api_as, people, run):
    answer = sign(api_as, people["sam"], run, role="Tech Lead", decision="approve")

    assert answer.status_code == 403


def test_the_gate_refuses_approval_while_required_items_are_open_and_says_which(api_as, people, run):
    answer = sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")

    assert answer.status_code == 409
    open_titles = [i["title"] for i in answer.json_body["open"]]
    assert "Tag the release" in open_titles
    assert "Restore tested" not in open_titles  # optional
    assert "Error rate normal after one hour" not in open_titles  # after go-live


def test_skipped_with_a_reason_counts_as_finished(api_as, people, run):
    items = list(run.items.filter(required=True))
    for item in items[1:]:
        services.run_item_set_state(item=item, state="done", actor=people["mo"])
    services.run_item_set_state(item=items[0], state="skipped", actor=people["mo"], reason="no tag for hotfix")

    answer = sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")

    assert answer.status_code == 201


def test_changing_an_item_after_approval_makes_the_approval_stale(api_as, people, run):
    finish_required(run, people["mo"])
    sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")

    services.run_item_set_state(item=run.items.filter(required=True).first(), state="in_progress", actor=people["mo"])

    signoff = Signoff.objects.get()
    assert signoff.stale
    assert AuditEvent.objects.filter(action="signoff.stale").exists()
    view = api_as(people["mo"]).get(f"/api/v1/runs/{run.pk}").json_body
    assert view["signoffs"][0]["stale"] is True


def test_the_run_goes_live_when_every_role_has_approved_and_then_is_locked(api_as, people, run):
    finish_required(run, people["mo"])

    first = sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")
    assert first.json_body["run_status"] == "in_progress"
    second = sign(api_as, people["sam"], run, role="security lead", decision="approve")

    assert second.status_code == 201
    run.refresh_from_db()
    assert run.status == "completed" and run.completed_at is not None
    assert AuditEvent.objects.filter(action="run.live").count() == 1
    locked = api_as(people["mo"]).post(f"/api/v1/runs/{run.pk}/items/{run.items.filter(required=True).first().pk}", {"state": "todo"})
    assert locked.status_code == 409
    after = run.items.get(after_go_live=True)
    assert api_as(people["mo"]).post(f"/api/v1/runs/{run.pk}/items/{after.pk}", {"state": "done"}).status_code == 200
    assert api_as(people["mo"]).post(f"/api/v1/runs/{run.pk}/notes", {"body": "all quiet"}).status_code == 201


def test_a_rejection_needs_a_reason_and_blocks_go_live_until_that_role_approves(api_as, people, run):
    finish_required(run, people["mo"])

    no_reason = sign(api_as, people["sam"], run, role="Security Lead", decision="reject")
    rejected = sign(api_as, people["sam"], run, role="Security Lead", decision="reject", comment="pen test open")
    sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")

    assert no_reason.status_code == 400
    assert rejected.status_code == 201
    assert Run.objects.get().status == "in_progress"
    sign(api_as, people["sam"], run, role="Security Lead", decision="approve")
    assert Run.objects.get().status == "completed"


def test_a_lead_may_override_the_gate_with_a_reason_and_it_is_recorded(api_as, people, run, make_user):
    lead_tl = make_user("lt", "lead", "Tech Lead")

    answer = sign(api_as, lead_tl, run, role="Tech Lead", decision="approve", override_reason="hotfix for outage")

    assert answer.status_code == 201
    assert answer.json_body["override_reason"] == "hotfix for outage"
    event = AuditEvent.objects.get(action="signoff.override")
    assert event.after["override_reason"] == "hotfix for outage"
    assert len(event.after["open"]) >= 1


def test_a_role_holder_who_is_not_a_lead_cannot_override(api_as, people, run):
    answer = sign(api_as, people["tess"], run, role="Tech Lead", decision="approve", override_reason="trust me")

    assert answer.status_code == 403
    assert Signoff.objects.count() == 0


def test_a_template_without_roles_needs_one_lead_approval(api_as, people, lead, db):
    from checklists import markdown as md

    version = services.template_import(md.parse("# Tiny\n\n- [ ] one\n"), actor=lead)
    environment = services.environment_get_or_create("tiny", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=people["mo"])
    services.run_item_set_state(item=run.items.get(), state="done", actor=people["mo"])

    refused = sign(api_as, people["mo"], run, decision="approve")
    approved = sign(api_as, people["lena"], run, decision="approve")

    assert refused.status_code == 403
    assert approved.status_code == 201
    assert Run.objects.get(pk=run.pk).status == "completed"


def test_only_a_lead_aborts_a_run_and_a_reason_is_required(api_as, people, run):
    client_member = api_as(people["mo"])
    client_lead = api_as(people["lena"])

    assert client_member.post(f"/api/v1/runs/{run.pk}/status", {"status": "aborted", "reason": "x"}).status_code == 403
    assert client_lead.post(f"/api/v1/runs/{run.pk}/status", {"status": "aborted"}).status_code == 400
    answer = client_lead.post(f"/api/v1/runs/{run.pk}/status", {"status": "aborted", "reason": "db migration failed in staging"})

    assert answer.status_code == 200
    assert answer.json_body["status"] == "aborted"


def test_the_events_api_tells_the_whole_story_oldest_first(api_as, people, run):
    finish_required(run, people["mo"])
    sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")
    sign(api_as, people["sam"], run, role="Security Lead", decision="approve")

    page = api_as(people["mo"]).get(f"/api/v1/runs/{run.pk}/events", page_size=500).json_body

    actions = [e["action"] for e in page["results"]]
    assert actions[0] == "run.start"
    assert actions[-3:] == ["signoff.approve", "signoff.approve", "run.live"]
    assert page["count"] == len(actions)
    assert {e["actor"] for e in page["results"]} >= {"mo2", "tess", "sam"}


def test_the_run_report_in_markdown_json_and_csv(api_as, people, run):
    finish_required(run, people["mo"])
    services.note_add(run=run, body="smooth launch", actor=people["mo"])
    sign(api_as, people["tess"], run, role="Tech Lead", decision="approve")
    client = api_as(people["mo"])

    markdown = client.get(f"/api/v1/runs/{run.pk}/export", format="md").content.decode()
    as_json = client.get(f"/api/v1/runs/{run.pk}/export", format="json").json_body
    as_csv = client.get(f"/api/v1/runs/{run.pk}/export", format="csv").content.decode()

    assert "- [x] Tag the release" in markdown and "done by mo2" in markdown
    assert "- [x] Tech Lead — approved by tess" in markdown
    assert "- [ ] Security Lead" in markdown
    assert "smooth launch" in markdown
    assert as_json["signoffs"][0]["user"] == "tess"
    assert as_csv.splitlines()[0].startswith("item_id,section,depth,title,state")
    assert len(as_csv.strip().splitlines()) == 1 + 6


def test_history_filters_and_csv(api_as, people, small_template, make_user):
    pipeline = api_as(people["mo"])
    for project, env in [("shop", "production"), ("shop", "staging"), ("blog", "production")]:
        pipeline.post("/api/v1/runs", {"template": "small-launch", "project": project, "environment": env, "version": "1"})
    client = api_as(make_user("meg", "manager"))

    everything = client.get("/api/v1/runs").json_body
    shop = client.get("/api/v1/runs", project="shop").json_body
    prod = client.get("/api/v1/runs", environment="production", page_size=1).json_body
    csv_text = client.get("/api/v1/runs", project="shop", format="csv").content.decode()
    bad_date = client.get("/api/v1/runs", since="yesterday")
    impossible_date = client.get("/api/v1/runs", until="2024-02-30")
    member_refused = pipeline.get("/api/v1/runs")

    assert everything["count"] == 3
    assert shop["count"] == 2
    assert prod["count"] == 2 and len(prod["results"]) == 1 and "page=2" in prod["next"]
    assert len(csv_text.strip().splitlines()) == 3
    assert bad_date.status_code == impossible_date.status_code == 400
    assert member_refused.status_code == 403
