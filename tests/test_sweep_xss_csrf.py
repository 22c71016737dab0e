"""Two sweeps over every door: what a user types is inert wherever it is shown, and no
cookie-authenticated POST goes through without its CSRF token."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from checklists import markdown as md
from checklists import services
from checklists.models import AuditEvent, RunItem

pytestmark = pytest.mark.django_db

# Each carries a marker number so a leak names the field it came through.
PAYLOADS = {
    "template": '<script>alert("x1")</script>',
    "section": '<img src=x onerror=alert("x2")>',
    "item": '"><svg onload=alert("x3")>',
    "body": '[click](javascript:alert("x4")) <iframe src="javascript:alert(\'x4b\')"></iframe>',
    "note": '<script>alert("x5")</script> [go](javascript:alert("x5b"))',
    "reason": '"><img src=x onerror=alert("x6")>',
    "version": "<b onmouseover=alert('x7')>1</b>",
    "comment": "<script>alert('x8')</script>",
    "project": "<i>x9</i>",
    "variable": '"><script>alert("x10")</script>',
}
# What would run if it reached a page unescaped.
LIVE = re.compile(r"<script>alert|<img src=x onerror|<svg onload|<iframe src=\"javascript|href=\"javascript:|<b onmouseover|<i>x9</i>", re.I)


@pytest.fixture
def hostile_run(make_user):
    lead = make_user("lena", "lead", "Tech Lead")
    member = make_user("mo", "member")
    text = f"""# {PAYLOADS["template"]}

## {PAYLOADS["section"]}

- [ ] {PAYLOADS["item"]}

  {PAYLOADS["body"]}

- [ ] Second <!-- check: tcp host=127.0.0.1 port=5432 -->

## Sign-Off

- [ ] Tech Lead
"""
    version = services.template_import(md.parse(text), actor=lead)
    environment = services.environment_get_or_create("shop", "prod")
    services.environment_variable_set(environment=environment, name="base_url", value=PAYLOADS["variable"], secret=False)
    run, _ = services.run_start(version=version, environment=environment, version_label=PAYLOADS["version"], actor=member)
    first, second = RunItem.objects.filter(run=run).order_by("position")
    services.note_add(run=run, actor=member, body=PAYLOADS["note"], item=first)
    services.run_item_set_state(item=second, state="skipped", actor=member, reason=PAYLOADS["reason"])
    services.run_item_set_state(item=first, state="done", actor=member, reason="")
    services.signoff_record(run=run, actor=lead, role="Tech Lead", decision="reject", comment=PAYLOADS["comment"])
    return run, lead, environment, version


def test_every_page_and_export_shows_what_users_typed_as_text(client, hostile_run):
    run, lead, environment, version = hostile_run
    client.force_login(lead)
    pages = [
        "/", "/history/", "/templates/", f"/templates/{version.template.pk}/", f"/templates/{version.template.pk}/edit",
        f"/runs/{run.pk}/", f"/runs/{run.pk}/report", f"/runs/new?version={version.pk}&project=shop&environment=prod",
        "/environments/", f"/environments/{environment.pk}/", f"/runs/{run.pk}/poll?rev=0&status=in_progress&gate=0",
        f"/runs/{run.pk}/items/{run.items.order_by('position').first().pk}/menu",
    ]
    for path in pages:
        answer = client.get(path, headers={"HX-Request": "true"} if "poll" in path else {})
        assert answer.status_code == 200, path
        body = answer.content.decode()
        assert not LIVE.search(body), f"{path}: {LIVE.search(body).group(0)!r} reached the page"
    # The text is there, escaped, not dropped.
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "&lt;script&gt;alert(&quot;x5&quot;)&lt;/script&gt;" in page or "&lt;script&gt;alert(\"x5\")&lt;/script&gt;" in page
    # Exports are files, not pages: the CSV neutralises formulas, JSON escapes, and Markdown is
    # served as text/markdown with a download disposition, so a browser never renders it.
    for fmt, kind in (("md", "text/markdown"), ("json", "application/json"), ("csv", "text/csv")):
        answer = client.get(f"/runs/{run.pk}/report?format={fmt}")
        assert answer["Content-Type"].startswith(kind) and answer["Content-Disposition"].startswith("attachment")
    assert client.get(f"/templates/{version.template.pk}/export.md")["Content-Type"].startswith(("text/markdown", "text/plain"))


def _post_routes(resolver=None, prefix=""):
    """Every page route of the app and of auth that a browser posts to."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith(("api/", "admin/")):
                continue
            yield from _post_routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.name


def _fill(route: str, ids: dict) -> str:
    return "/" + re.sub(r"<int:(\w+)>", lambda m: str(ids.get(m.group(1), 1)), route)


def test_no_cookie_authenticated_post_passes_without_its_csrf_token(hostile_run):
    run, lead, environment, version = hostile_run
    item = run.items.first()
    section = run.sections.first()
    ids = {"pk": run.pk, "item_pk": item.pk, "section_pk": section.pk}
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(lead)
    events = AuditEvent.objects.count()
    refused = {}
    for route, name in _post_routes():
        if name in ("healthz", "readyz") or "password_reset" in (name or "") or "reset" in route:
            continue
        path = _fill(route, {**ids, "pk": environment.pk if route.startswith("environments/") else version.template.pk if route.startswith("templates/") else run.pk})
        for headers in ({}, {"HX-Request": "true"}):
            answer = strict.post(path, {"state": "done", "body": "x", "decision": "approve", "reason": "r", "name": "n", "value": "v"}, headers=headers)
            refused[(path, bool(headers))] = answer.status_code
    admin = strict.post("/admin/login/", {"username": "lena", "password": "correct horse battery staple"})

    allowed = {k: v for k, v in refused.items() if v != 403}
    assert allowed == {}, allowed
    assert len(refused) >= 40  # the sweep really walked the routes
    assert admin.status_code == 403
    assert AuditEvent.objects.count() == events
