"""A pipeline asks deploycheck whether a release may be promoted: GET /api/v1/gate (and strict=1),
POST /api/v1/gate for webhook gates that send no headers. The answer is the sign-off panel's."""

import pytest

from checklists import services

from .stories import go_live, verdict

pytestmark = pytest.mark.django_db

RELEASE = {"project": "shop", "environment": "production", "version": "1"}


def gate(api, strict=False, **release):
    params = {**RELEASE, **release}
    if strict:
        params["strict"] = "1"
    return api.get("/api/v1/gate", **params)


def test_the_gate_says_none_then_pending_with_what_holds_it_then_approved(api_as, member, small_template, client):
    api = api_as(member)
    before = gate(api)
    assert before.status_code == 200
    assert before.json_body == {"decision": "none", "run": None, "missing_roles": [], "open_items": [], "failing_checks": []}
    assert gate(api, strict=True).status_code == 404

    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=member)
    pending = gate(api)

    answer = pending.json_body
    assert pending.status_code == 200 and answer["decision"] == "pending"
    assert answer["run"] == {"id": run.pk, "html_url": f"http://testserver/runs/{run.pk}/"}
    assert answer["missing_roles"] == [{"role": "Tech Lead", "have": 0, "need": 1}, {"role": "Security Lead", "have": 0, "need": 1}]
    assert [i["title"] for i in answer["open_items"]] == ["Tag the release", "Backups are recent", "Deploy the build", "Health endpoint answers"]
    assert answer["failing_checks"] == []
    # The sign-off panel on the run page says the same.
    client.force_login(member)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "<strong>4</strong> required items still open" in page and "Tech Lead</strong> 0 of 1" in page
    strict = gate(api, strict=True)
    assert strict.status_code == 409 and strict.json_body["decision"] == "pending" and "not approved yet" in strict.json_body["error"]

    go_live(run)

    approved = gate(api, strict=True)
    assert approved.status_code == 200
    assert approved.json_body["decision"] == "approved" and approved.json_body["missing_roles"] == []


def test_a_failing_check_is_named_and_an_abort_rejects(api_as, lead, run):
    api = api_as(lead)
    health = run.items.get(text="Health endpoint answers")
    services.run_item_set_state(item=health, state="done", actor=lead)
    verdict(health, "failed")

    answer = gate(api).json_body
    assert answer["failing_checks"] == [{"id": health.pk, "title": "Health endpoint answers", "verification": "failed"}]
    assert {"id": health.pk, "title": "Health endpoint answers", "state": "done", "verification": "failed", "problem": "verification failed"} in answer["open_items"]

    services.run_set_status(run=run, status="aborted", reason="health check fails", actor=lead)

    rejected = gate(api, strict=True)
    assert rejected.status_code == 403
    assert rejected.json_body["decision"] == "rejected" and "aborted or rolled back" in rejected.json_body["error"]


def test_the_newest_run_of_the_version_decides(api_as, lead, run, small_template):
    services.run_set_status(run=run, status="aborted", reason="bad build", actor=lead)
    again, _ = services.run_start(version=small_template, environment=run.environment, version_label="1", actor=lead)

    answer = gate(api_as(lead)).json_body

    assert answer["decision"] == "pending" and answer["run"]["id"] == again.pk
    assert gate(api_as(lead), version="2").json_body["decision"] == "none"


def test_a_rollback_after_going_live_rejects(api_as, lead, run):
    go_live(run)
    services.run_set_status(run=run, status="rolled_back", reason="errors after launch", actor=lead)

    assert gate(api_as(lead)).json_body["decision"] == "rejected"


def test_the_gate_wants_a_token_and_a_whole_release(api_as, anonymous_api, member, run):
    refused = anonymous_api.get("/api/v1/gate", **RELEASE)
    half = api_as(member).get("/api/v1/gate", project="shop", version="1")

    assert refused.status_code == 401 and "error" in refused.json_body
    assert half.status_code == 400 and half.json_body["error"] == "Say which release: environment is missing."


def test_a_webhook_gate_posts_the_release_and_token_in_the_query_or_metadata(api_as, anonymous_api, member, run):
    from checklists.models import ApiToken

    _, token = ApiToken.issue(member, name="flagger")
    in_query = anonymous_api.post(f"/api/v1/gate?project=shop&environment=production&version=1&token={token}", {})
    in_metadata = anonymous_api.post("/api/v1/gate", {"name": "shop", "namespace": "prod", "phase": "Promoting", "metadata": {**RELEASE, "token": token}})
    mixed = anonymous_api.post(f"/api/v1/gate?version=2&token={token}", {"metadata": RELEASE})
    no_token = anonymous_api.post("/api/v1/gate", {"metadata": RELEASE})
    bad_token = anonymous_api.post("/api/v1/gate", {"metadata": {**RELEASE, "token": "dc_nope"}})
    not_json = anonymous_api.client.post(f"/api/v1/gate?token={token}", "{", content_type="application/json")

    assert in_query.status_code == 409 and in_query.json_body["run"]["id"] == run.pk
    assert in_metadata.status_code == 409 and in_metadata.json_body["decision"] == "pending"
    assert mixed.status_code == 404  # the query wins: version 2 has no run
    assert no_token.status_code == 401 and bad_token.status_code == 401
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]


def test_a_checklist_imported_as_a_past_run_is_no_launch_for_the_gate(api_as, lead):
    from checklists import markdown as md

    from .conftest import SMALL_CHECKLIST

    environment = services.environment_get_or_create("shop", "production")
    services.run_import(md.parse(SMALL_CHECKLIST.replace("- [ ]", "- [x]")), environment=environment, version_label="1", actor=lead)

    assert gate(api_as(lead)).json_body["decision"] == "none"


def test_four_eyes_still_missing_is_named(api_as, make_user, lead):
    from checklists import markdown as md

    stella = make_user("stella", "member", "Tech Lead")
    text = "# Hotfix\n\n## Steps\n\n- [ ] Patch deployed\n\n## Sign-Off\n<!-- four-eyes -->\n\n- [ ] Tech Lead\n"
    version = services.template_import(md.parse(text), actor=lead)
    run, _ = services.run_start(version=version, environment=services.environment_get_or_create("shop", "production"), version_label="1", actor=stella)
    services.run_item_set_state(item=run.items.get(), state="done", actor=stella)
    services.signoff_record(run=run, actor=stella, decision="approve", role="Tech Lead")

    answer = gate(api_as(lead)).json_body

    assert answer["decision"] == "pending" and answer["open_items"] == []
    assert answer["missing_roles"] == [{"role": "Four eyes (someone other than stella)", "have": 0, "need": 1}]
