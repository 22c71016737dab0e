"""A CI pipeline opens a run, and the team moves its items through the API."""

import pytest

from checklists.models import AuditEvent, Note, Run, RunItem, RunVariable

from .stories import go_live

pytestmark = pytest.mark.django_db


def open_run(client, **overrides):
    body = {
        "template": "small-launch",
        "project": "shop",
        "environment": "production",
        "version": "2.4.0",
        "variables": {"base_url": "https://shop.example.test", "token": {"value": "s3cr3t-t0ken", "secret": True}},
        **overrides,
    }
    return client.post("/api/v1/runs", body)


def test_pipeline_opens_a_run_and_reads_it_back(api_as, member, small_template):
    client = api_as(member)
    answer = open_run(client)

    assert answer.status_code == 201
    run = answer.json_body
    assert (run["project"], run["environment"], run["version"], run["status"]) == ("shop", "production", "2.4.0", "in_progress")
    assert run["html_url"].endswith(f"/runs/{run['id']}/")
    assert run["required_roles"] == ["Tech Lead", "Security Lead"]
    assert run["progress"] == {"done": 0, "skipped": 0, "blocked": 0, "total": 6}
    titles = [(i["title"], i["depth"], i["section"]["title"]) for i in run["items"]]
    assert titles[:3] == [("Tag the release", 0, "Before"), ("Backups are recent", 0, "Before"), ("Restore tested", 1, "Before")]
    restore, watch = run["items"][2], run["items"][5]
    assert restore["required"] is False
    assert watch["after_go_live"] is True and watch["required"] is False
    health = run["items"][4]
    assert health["check"] == {"kind": "http", "params": {"url": "{{ base_url }}/health"}}
    assert health["verification"] is None

    fetched = client.get(f"/api/v1/runs/{run['id']}")
    assert fetched.status_code == 200
    assert fetched.json_body["items"] == run["items"]


def test_project_and_environment_are_created_on_first_use(api_as, member, small_template):
    open_run(api_as(member), project="new-project", environment="staging")

    run = Run.objects.get()
    assert (run.project.name, run.environment.name) == ("new-project", "staging")


def test_a_retrying_pipeline_with_the_same_idempotency_key_gets_the_same_run(api_as, member, small_template):
    client = api_as(member)
    first = client.post("/api/v1/runs", {"template": "small-launch", "project": "shop", "environment": "prod", "version": "1"}, headers={"Idempotency-Key": "build-981"})
    second = client.post("/api/v1/runs", {"template": "small-launch", "project": "shop", "environment": "prod", "version": "1"}, headers={"Idempotency-Key": "build-981"})
    other = client.post("/api/v1/runs", {"template": "small-launch", "project": "shop", "environment": "prod", "version": "1"}, headers={"Idempotency-Key": "build-982"})

    assert first.status_code == 201
    assert second.json_body["id"] == first.json_body["id"]
    assert other.json_body["id"] != first.json_body["id"]
    assert Run.objects.count() == 2


def test_secret_variables_are_stored_encrypted_and_never_shown(api_as, member, small_template):
    answer = open_run(api_as(member))

    stored = RunVariable.objects.get(name="token")
    assert stored.secret and "s3cr3t-t0ken" not in stored.stored
    assert stored.value == "s3cr3t-t0ken"
    assert "s3cr3t-t0ken" not in answer.content.decode()


def test_an_unknown_template_is_a_404_and_opens_nothing(api_as, member, db):
    answer = open_run(api_as(member), template="no-such-checklist")

    assert answer.status_code == 404
    assert "no-such-checklist" in answer.json_body["error"]
    assert Run.objects.count() == 0


def test_viewer_cannot_open_a_run(api_as, make_user, small_template):
    answer = open_run(api_as(make_user("vic", "viewer")))

    assert answer.status_code == 403
    assert Run.objects.count() == 0


def test_member_ticks_an_item_and_the_trail_names_them(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body
    item = run["items"][0]

    answer = client.post(f"/api/v1/runs/{run['id']}/items/{item['id']}", {"state": "done"})

    assert answer.status_code == 200
    assert answer.json_body["state"] == "done"
    assert answer.json_body["changed_by"] == "mo"
    event = AuditEvent.objects.filter(action="item.state").get()
    assert (event.actor_name, event.before["state"], event.after["state"]) == ("mo", "todo", "done")
    assert client.get(f"/api/v1/runs/{run['id']}").json_body["progress"]["done"] == 1


def test_blocking_needs_a_reason(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body
    url = f"/api/v1/runs/{run['id']}/items/{run['items'][1]['id']}"

    refused = client.post(url, {"state": "blocked"})
    accepted = client.post(url, {"state": "blocked", "note": "backup bucket is empty"})

    assert refused.status_code == 400
    assert "reason" in refused.json_body["error"]
    assert accepted.status_code == 200
    assert (accepted.json_body["state"], accepted.json_body["reason"]) == ("blocked", "backup bucket is empty")
    assert AuditEvent.objects.filter(action="item.state").count() == 1


def test_an_unknown_state_is_a_400(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body

    answer = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][0]['id']}", {"state": "finished"})

    assert answer.status_code == 400
    assert "todo" in answer.json_body["error"]


def test_assigning_an_item_to_a_teammate(api_as, member, make_user, small_template):
    make_user("ana", "member")
    client = api_as(member)
    run = open_run(client).json_body

    answer = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][0]['id']}", {"assignee": "ana"})
    unknown = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][0]['id']}", {"assignee": "nobody"})

    assert answer.json_body["assignee"] == "ana"
    assert unknown.status_code == 400
    assert RunItem.objects.get(pk=run["items"][0]["id"]).assignee.username == "ana"


def test_notes_on_the_run_and_on_an_item(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body

    on_run = client.post(f"/api/v1/runs/{run['id']}/notes", {"body": "Window starts at 14:00 UTC"})
    on_item = client.post(f"/api/v1/runs/{run['id']}/notes", {"body": "Used the *new* tag", "item": run["items"][0]["id"]})
    empty = client.post(f"/api/v1/runs/{run['id']}/notes", {"body": "  "})

    assert on_run.status_code == on_item.status_code == 201
    assert on_item.json_body["item"] == run["items"][0]["id"]
    assert empty.status_code == 400
    assert Note.objects.count() == 2
    assert AuditEvent.objects.filter(action="note.add").count() == 2


def test_an_item_of_another_run_is_not_found(api_as, member, small_template):
    client = api_as(member)
    first = open_run(client).json_body
    second = open_run(client, version="2.4.1").json_body

    answer = client.post(f"/api/v1/runs/{first['id']}/items/{second['items'][0]['id']}", {"state": "done"})

    assert answer.status_code == 404
    assert answer.json_body == {"error": "No such item in this run."}


def test_a_live_run_is_locked_except_its_after_go_live_items(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body
    go_live(Run.objects.get(pk=run["id"]))

    locked = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][0]['id']}", {"state": "done"})
    watch = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][5]['id']}", {"state": "done"})

    assert locked.status_code == 409
    assert "locked" in locked.json_body["error"]
    assert watch.status_code == 200


def test_an_aborted_run_refuses_every_change(api_as, member, lead, small_template):
    client = api_as(member)
    run = open_run(client).json_body
    api_as(lead).post(f"/api/v1/runs/{run['id']}/status", {"status": "aborted", "reason": "bad build"})

    answer = client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][5]['id']}", {"state": "done"})

    assert answer.status_code == 409
    assert "aborted" in answer.json_body["error"]


def test_every_change_bumps_the_run_revision(api_as, member, small_template):
    client = api_as(member)
    run = open_run(client).json_body
    start = Run.objects.get().revision

    client.post(f"/api/v1/runs/{run['id']}/items/{run['items'][0]['id']}", {"state": "in_progress"})
    client.post(f"/api/v1/runs/{run['id']}/notes", {"body": "halfway"})

    assert Run.objects.get().revision == start + 2


def test_a_missing_run_is_a_json_404(api_as, member, db):
    answer = api_as(member).get("/api/v1/runs/999999")

    assert answer.status_code == 404
    assert answer.json_body == {"error": "No such run."}


def test_a_pipelines_token_stops_working_once_revoked_or_its_owner_has_left(member, small_template):
    """An admin revokes the token of a leaked CI secret; another pipeline's owner leaves the
    company and her account is deactivated. Both tokens are refused at once, the rest go on."""
    from django.utils import timezone

    from checklists.models import ApiToken

    from .conftest import ApiClient

    leaked, leaked_raw = ApiToken.issue(member, name="leaked")
    _, kept_raw = ApiToken.issue(member, name="kept")
    assert ApiClient(leaked_raw).get("/api/v1/templates").status_code == 200

    ApiToken.objects.filter(pk=leaked.pk).update(revoked_at=timezone.now())
    assert ApiClient(leaked_raw).get("/api/v1/templates").status_code == 401
    assert ApiClient(kept_raw).get("/api/v1/templates").status_code == 200
    assert ApiToken.objects.get(name="kept").last_used_at is not None  # what the admin page shows

    member.is_active = False
    member.save(update_fields=["is_active"])
    assert ApiClient(kept_raw).get("/api/v1/templates").status_code == 401
