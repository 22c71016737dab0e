"""Odd input at every door gets a clear 4xx and changes nothing; never a 500."""

import pytest

from checklists import services
from checklists.models import Project, Run
from checklists.services.runs import _run_create

pytestmark = pytest.mark.django_db


def open_run(client, headers=None, **overrides):
    body = {"template": "small-launch", "project": "shop", "environment": "production", "version": "2.4.0", "variables": {}, **overrides}
    return client.post("/api/v1/runs", body, headers=headers)


def test_a_superscript_two_is_not_a_template_id(api_as, member, small_template):
    answer = api_as(member).get("/api/v1/templates/²/export")

    assert answer.status_code == 404


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("project", "p" * 5000, "at most 100"),
        ("environment", "prod\nuction", "control character"),
        ("version", "2.4.0\r\nX-Injected: 1", "control character"),
        ("version", "", "Give the version"),
    ],
)
def test_names_that_would_break_headers_and_reports_are_refused(api_as, member, small_template, field, value, message):
    answer = open_run(api_as(member), **{field: value})

    assert answer.status_code == 400
    assert message in answer.json_body["error"]
    assert not Run.objects.exists() and not Project.objects.exists()


def test_a_100_kb_variable_value_is_refused(api_as, member, small_template):
    answer = open_run(api_as(member), variables={"base_url": "x" * 100_000})

    assert answer.status_code == 400 and "at most 8192" in answer.json_body["error"]
    assert not Run.objects.exists()


def test_a_run_whose_names_hold_odd_characters_still_exports(api_as, member, small_template):
    # A run from before names were checked: its version holds a line break and a quote.
    environment = services.environment_get_or_create('Über "shop"', "production")
    run = _run_create(small_template, environment, 'rc1\n"final"', member, [], None)

    answer = api_as(member).get(f"/api/v1/runs/{run.pk}/export", format="md")

    assert answer.status_code == 200
    assert "\n" not in answer["Content-Disposition"]


def test_an_idempotency_key_replay_answers_201_and_the_same_run(api_as, member, small_template):
    client = api_as(member)
    first = open_run(client, headers={"Idempotency-Key": "deploy-4711"})
    again = open_run(client, headers={"Idempotency-Key": "deploy-4711"})

    assert first.status_code == again.status_code == 201
    assert first.json_body["id"] == again.json_body["id"]
    assert Run.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict(api_as, member, small_template):
    client = api_as(member)
    first = open_run(client, headers={"Idempotency-Key": "deploy-4711"})
    other = open_run(client, headers={"Idempotency-Key": "deploy-4711"}, version="2.4.1")

    assert other.status_code == 409
    assert f"run {first.json_body['id']}" in other.json_body["error"]
    assert Run.objects.count() == 1


def test_a_nul_character_in_a_page_form_is_a_clear_400(client, member, small_template):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=member)
    client.force_login(member)

    answer = client.post(f"/runs/{run.pk}/notes", "body=a%00b", content_type="application/x-www-form-urlencoded")

    assert answer.status_code == 400 and b"NUL" in answer.content
    assert not run.notes.exists()


def test_a_wrong_method_says_which_the_address_takes(api_as, client, member, run):
    """A pipeline script sends PUT where the contract says POST; someone pastes a form's
    address into the browser. Both learn what the address takes; nothing changes."""
    item = run.items.order_by("position").first()

    put = api_as(member).put(f"/api/v1/runs/{run.pk}/items/{item.pk}", {"state": "done"})
    assert put.status_code == 405 and put["Allow"] == "POST"
    assert put.json_body == {"error": "This address does not take PUT; it takes POST."}

    client.force_login(member)
    pasted = client.get(f"/runs/{run.pk}/items/{item.pk}/state")
    assert pasted.status_code == 405 and pasted.content.decode() == "This address does not take GET; it takes POST."
    assert run.items.get(pk=item.pk).state == "todo"
