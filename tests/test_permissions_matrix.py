"""Every role (anonymous included) against every action, pages and API: exactly the allowed ones pass."""

import pytest
from django.test import Client

from checklists import markdown as md
from checklists import services
from checklists.models import ApiToken

from .conftest import SMALL_CHECKLIST, ApiClient

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "viewer", "member", "lead", "manager", "admin"]
EVERYONE = {"viewer", "member", "lead", "manager", "admin"}
WORKERS = {"member", "lead", "admin"}
LEADS = {"lead", "admin"}
REPORTERS = {"lead", "manager", "admin"}


@pytest.fixture
def world(make_user):
    users = {role: make_user(f"{role}-user", role) for role in ROLES if role != "anonymous"}
    version = services.template_import(md.parse(SMALL_CHECKLIST), actor=users["lead"])
    roleless = services.template_import(md.parse("# Tiny\n\n- [ ] only\n"), actor=users["lead"])
    return users, version, roleless


def fresh_run(world, *, roleless=False, finished=False):
    users, version, tiny = world
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(version=tiny if roleless else version, environment=environment, version_label="1", actor=users["lead"])
    if finished:
        for item in run.items.all():
            services.run_item_set_state(item=item, state="done", actor=users["lead"])
    return run


def api_for(world, role):
    if role == "anonymous":
        return ApiClient(None)
    _, raw = ApiToken.issue(world[0][role])
    return ApiClient(raw)


def page_for(world, role):
    client = Client()
    if role != "anonymous":
        client.force_login(world[0][role])
    return client


API_ACTIONS = {
    "list templates": (EVERYONE, lambda w, c: c.get("/api/v1/templates")),
    "import a template": (LEADS, lambda w, c: c.post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST})),
    "open a run": (WORKERS, lambda w, c: c.post("/api/v1/runs", {"template": "small-launch", "project": "p", "environment": "e", "version": "1"})),
    "read a run": (EVERYONE, lambda w, c: c.get(f"/api/v1/runs/{fresh_run(w).pk}")),
    "tick an item": (WORKERS, lambda w, c: (lambda r: c.post(f"/api/v1/runs/{r.pk}/items/{r.items.first().pk}", {"state": "done"}))(fresh_run(w))),
    "write a note": (WORKERS, lambda w, c: c.post(f"/api/v1/runs/{fresh_run(w).pk}/notes", {"body": "hi"})),
    "abort a run": (LEADS, lambda w, c: c.post(f"/api/v1/runs/{fresh_run(w).pk}/status", {"status": "aborted", "reason": "x"})),
    "approve as a lead": (LEADS, lambda w, c: c.post(f"/api/v1/runs/{fresh_run(w, roleless=True, finished=True).pk}/signoffs", {"decision": "approve"})),
    "sign for Tech Lead": (set(), lambda w, c: c.post(f"/api/v1/runs/{fresh_run(w, finished=True).pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})),
    "read history": (REPORTERS, lambda w, c: c.get("/api/v1/runs")),
    "read the audit trail": (EVERYONE, lambda w, c: c.get(f"/api/v1/runs/{fresh_run(w).pk}/events")),
    "export a report": (EVERYONE, lambda w, c: c.get(f"/api/v1/runs/{fresh_run(w).pk}/export", format="json")),
}

PAGE_ACTIONS = {
    "dashboard": (EVERYONE, lambda w, c: c.get("/")),
    "history page": (REPORTERS, lambda w, c: c.get("/history/")),
    "run page": (EVERYONE, lambda w, c: c.get(fresh_run(w).get_absolute_url())),
    "tick on the page": (WORKERS, lambda w, c: (lambda r: c.post(f"/runs/{r.pk}/items/{r.items.first().pk}/state", {"state": "done"}, headers={"HX-Request": "true"}))(fresh_run(w))),
    "note on the page": (WORKERS, lambda w, c: c.post(f"/runs/{fresh_run(w).pk}/notes", {"body": "hi"}, headers={"HX-Request": "true"})),
    "start a run page": (WORKERS, lambda w, c: c.get("/runs/new")),
    "import page": (LEADS, lambda w, c: c.get("/templates/import")),
    "edit a template": (LEADS, lambda w, c: c.get(f"/templates/{w[1].template_id}/edit")),
    "abort on the page": (LEADS, lambda w, c: c.post(f"/runs/{fresh_run(w).pk}/status", {"status": "aborted", "reason": "x"}, headers={"HX-Request": "true"})),
    "approve on the page": (LEADS, lambda w, c: c.post(f"/runs/{fresh_run(w, roleless=True, finished=True).pk}/signoffs", {"decision": "approve"}, headers={"HX-Request": "true"})),
    "admin site": ({"admin"}, lambda w, c: c.get("/admin/")),
}


def allowed(response) -> bool:
    if "/accounts/login/" in response.get("HX-Redirect", ""):
        return False
    return response.status_code < 300 or (response.status_code == 302 and "/accounts/login/" not in response["Location"] and "/admin/login/" not in response["Location"])


@pytest.mark.parametrize("action", list(API_ACTIONS))
def test_api_allows_exactly_the_right_roles(world, action):
    expected, call = API_ACTIONS[action]

    passed = {role for role in ROLES if allowed(call(world, api_for(world, role)))}

    assert passed == expected


@pytest.mark.parametrize("action", list(PAGE_ACTIONS))
def test_pages_allow_exactly_the_right_roles(world, action):
    expected, call = PAGE_ACTIONS[action]

    passed = {role for role in ROLES if allowed(call(world, page_for(world, role)))}

    assert passed == expected


def test_holding_a_signoff_role_is_what_lets_anyone_sign_for_it(world, make_user):
    viewer_with_role = make_user("vera-tl", "viewer", "Tech Lead")
    run = fresh_run(world, finished=True)
    _, raw = ApiToken.issue(viewer_with_role)

    answer = ApiClient(raw).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})

    assert answer.status_code == 201
