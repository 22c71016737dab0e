"""Shared arrangements: people with roles, a pipeline's API client, checklist files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

SHARED = Path(os.environ.get("DEPLOYCHECK_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SEEDS = SHARED / "seeds"
CORPUS = SHARED / "corpus"


@pytest.fixture
def make_user(db, monkeypatch):
    """A person with access and sign-off roles, made the way an operator does: `manage.py grant`."""
    monkeypatch.setenv("DEPLOYCHECK_PASSWORD", "correct horse battery staple")

    def make(username: str, *roles: str):
        call_command("grant", username, *(roles or ("viewer",)), "--create", stdout=open(os.devnull, "w"))
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(username=username)

    return make


class ApiClient:
    """What a CI pipeline does: JSON over HTTP with a bearer token."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _answer(self, response):
        response.json_body = None
        if response.get("Content-Type", "").startswith("application/json"):
            response.json_body = json.loads(response.content or b"null")
        return response

    def get(self, path, **params):
        return self._answer(self.client.get(path, params, headers=self.headers))

    def post(self, path, body=None, headers=None):
        return self._answer(
            self.client.post(
                path,
                data=json.dumps(body if body is not None else {}),
                content_type="application/json",
                headers={**self.headers, **(headers or {})},
            )
        )


@pytest.fixture
def api_as(db):
    from checklists.models import ApiToken

    def as_user(user):
        _, raw = ApiToken.issue(user, name="test pipeline")
        return ApiClient(raw)

    return as_user


@pytest.fixture
def anonymous_api():
    return ApiClient(None)


@pytest.fixture
def lead(make_user):
    return make_user("lena", "lead")


@pytest.fixture
def member(make_user):
    return make_user("mo", "member")


SMALL_CHECKLIST = """\
# Small Launch

What we do for a small release.

## Before

- [ ] Tag the release
- [ ] Backups are recent <!-- check: tcp host=127.0.0.1 port=5432 probe=postgres -->
  - [ ] Restore tested <!-- optional -->

## Deploy

- [ ] Deploy the build
- [ ] Health endpoint answers <!-- check: http url="{{ base_url }}/health" -->

## Watch
<!-- after-go-live -->

- [ ] Error rate normal after one hour

## Sign-Off

- [ ] Tech Lead
- [ ] Security Lead
"""


@pytest.fixture
def small_template(db, lead):
    from checklists import markdown as md
    from checklists import services

    return services.template_import(md.parse(SMALL_CHECKLIST), actor=lead, source=SMALL_CHECKLIST)
