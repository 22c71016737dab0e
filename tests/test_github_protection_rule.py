"""GitHub holds a deployment to `production` until deploycheck says so (a custom deployment
protection rule of a GitHub App). The GitHub here is a stand-in on 127.0.0.1 that checks the
App's JWT and records the calls; the answers go out through the outbox on a real worker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid

import pytest

from checklists import services
from checklists.models import GithubDeploymentRequest, OutboxMessage

from .conftest import Worker, beat_sweeps_outbox, test_database_url, wait_until
from .github_standin import AppKey, GitHubStandIn
from .stories import go_live, lead_of

APP_ID = "4242"
SECRET = "it's a secret to everybody"
SHA = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"


@pytest.fixture(scope="module")
def github(tmp_path_factory):
    key = AppKey()
    standin = GitHubStandIn(APP_ID, key.public_pem).start()
    # The private key in the two forms the setting takes: a path to the PEM file, and the PEM
    # itself on one line (`\n` for newlines, as an environment variable holds it).
    standin.key_path = tmp_path_factory.mktemp("github-app") / "app.pem"
    standin.key_path.write_text(key.private_pem)
    standin.key_inline = key.private_pem.strip().replace("\n", "\\n")
    yield standin
    standin.stop()


def github_env(github, *, key_inline=False) -> dict:
    return {
        "DEPLOYCHECK_GITHUB_API_URL": github.url,
        "DEPLOYCHECK_GITHUB_APP_ID": APP_ID,
        "DEPLOYCHECK_GITHUB_PRIVATE_KEY": github.key_inline if key_inline else str(github.key_path),
        "DEPLOYCHECK_GITHUB_WEBHOOK_SECRET": SECRET,
        "DEPLOYCHECK_OUTBOX_RETRY_SECONDS": "0.5",
    }


@pytest.fixture(scope="module")
def github_worker(django_db_setup, django_db_blocker, github, tmp_path_factory, worker_world):
    """A worker configured as the App, as an operator would, on a queue of this module's own."""
    queue = f"github-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": test_database_url(), "DEPLOYCHECK_QUEUE": queue, **worker_world.env, **github_env(github, key_inline=True)}
    worker = Worker(queue, env, tmp_path_factory.mktemp("github-worker"))
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def configured(settings, github):
    for name, value in github_env(github).items():
        setattr(settings, name, value)
    github.calls.clear()


@pytest.fixture
def on_worker(settings, github_worker):
    settings.CELERY_TASK_DEFAULT_QUEUE = github_worker.queue
    return github_worker


def deployment_event(*, sha=SHA, ref="main", environment="production", workflow_run=77, callback=None, github=None) -> dict:
    """GitHub's `deployment_protection_rule` payload, as its webhook documentation shows it."""
    return {
        "action": "requested",
        "environment": environment,
        "event": "push",
        "sha": sha,
        "ref": f"refs/heads/{ref}" if ref and not ref.startswith("v") else f"refs/tags/{ref}",
        "deployment_callback_url": callback or f"{github.url}/repos/acme/shop/actions/runs/{workflow_run}/deployment_protection_rule",
        "deployment": {"id": 5_000 + workflow_run, "sha": sha, "ref": ref, "task": "deploy", "environment": environment, "creator": {"login": "github-actions[bot]"}},
        "pull_requests": [],
        "repository": {"id": 1296269, "name": "shop", "full_name": "acme/shop", "default_branch": "main", "owner": {"login": "acme"}},
        "organization": {"login": "acme"},
        "installation": {"id": 31337, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
        "sender": {"login": "octocat", "type": "User"},
    }


def deliver(client, payload, *, event="deployment_protection_rule", secret=SECRET, signature=None):
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/api/v1/integrations/github", body, content_type="application/json", headers=headers)


def answers(github) -> list[str]:
    return [r["state"] for r in github.reviews() if "state" in r]


def open_run(member, small_template, version):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label=version, actor=member)
    return run


# --- Refused and ignored --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unsigned_or_forged_event_is_refused_and_nothing_is_recorded(client, github):
    payload = deployment_event(github=github)

    unsigned = deliver(client, payload, signature="")
    forged = deliver(client, payload, secret="guessed")
    body = json.dumps(payload).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    changed = client.post(
        "/api/v1/integrations/github", body.replace(b"production", b"staging"), content_type="application/json",
        headers={"X-GitHub-Event": "deployment_protection_rule", "X-Hub-Signature-256": good},
    )

    for answer in (unsigned, forged, changed):
        assert answer.status_code == 401 and "X-Hub-Signature-256" in answer.json()["error"]
    assert GithubDeploymentRequest.objects.count() == 0 and OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_ping_and_other_events_are_ignored_with_a_2xx(client, github):
    ping = deliver(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    push = deliver(client, {"ref": "refs/heads/main"}, event="push")

    assert ping.status_code == 200 and ping.json() == {"ignored": "ping"}
    assert push.status_code == 200
    assert GithubDeploymentRequest.objects.count() == 0


@pytest.mark.django_db
def test_a_callback_url_outside_the_github_api_is_refused(client, github):
    answer = deliver(client, deployment_event(callback="http://127.0.0.1:9/repos/acme/shop/actions/runs/1/deployment_protection_rule", github=github))

    assert answer.status_code == 400 and "DEPLOYCHECK_GITHUB_API_URL" in answer.json()["error"]
    assert GithubDeploymentRequest.objects.count() == 0 and OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_the_default_branch_never_matches(client, github, member, small_template):
    # A run whose version is the branch name: `main` is no release, only the sha names one.
    open_run(member, small_template, "main")
    open_run(member, small_template, SHA[:6])  # a prefix shorter than 7 names too many commits

    answer = deliver(client, deployment_event(ref="main", github=github))

    assert answer.status_code == 202 and answer.json()["run"] is None
    open_run(member, small_template, "main")  # opened after the event: still no match
    assert GithubDeploymentRequest.objects.get().run is None
    assert OutboxMessage.objects.count() == 0


# --- Answered through the outbox, on a real worker ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_github_hears_a_status_report_then_approved_when_the_run_goes_live(client, github, on_worker, member, small_template):
    run = open_run(member, small_template, SHA[:12])

    answer = deliver(client, deployment_event(github=github))

    assert answer.status_code == 202 and answer.json()["run"] == run.pk
    assert wait_until(lambda: len(github.reviews()) == 1)
    [report] = github.reviews()
    assert set(report) == {"environment_name", "comment"}  # a report carries no state
    assert report["environment_name"] == "production" and len(report["comment"]) <= 1024
    assert f"deploycheck run #{run.pk}" in report["comment"] and report["comment"].endswith(f"http://testserver/runs/{run.pk}/")
    assert "waiting for Tech Lead 0/1, Security Lead 0/1" in report["comment"]

    # Two sign-offs: the first is reported, the second takes the run live. Waiting between
    # them, as people do: a report still queued when the final answer comes is dropped as moot.
    signer = lead_of(run)
    services.signoff_record(run=run, actor=signer, decision="approve", role="Tech Lead", override_reason="launch window")
    assert wait_until(lambda: len(github.reviews()) == 2)
    services.signoff_record(run=run, actor=signer, decision="approve", role="Security Lead", override_reason="launch window")

    assert wait_until(lambda: answers(github))
    *reports, approved = github.reviews()
    assert approved["state"] == "approved" and approved["environment_name"] == "production"
    assert "went live" in approved["comment"]
    assert len(reports) == 2 and "Tech Lead 1/1" not in reports[1]["comment"] and "Security Lead 0/1" in reports[1]["comment"]
    # A fresh installation token for each call, each minted with a JWT the stand-in accepted.
    assert github.tokens_issued() == 3
    assert wait_until(lambda: {m.state for m in OutboxMessage.objects.all()} == {"delivered"}, timeout=10)


@pytest.mark.django_db(transaction=True)
def test_github_hears_rejected_when_the_run_is_aborted_even_after_a_bad_moment(client, github, on_worker, lead, small_template):
    run = open_run(lead, small_template, "v2.0.0")  # a tag: its ref names the release
    github.fail_next = 1  # GitHub answers the first call with a 502: the outbox tries again

    answer = deliver(client, deployment_event(ref="v2.0.0", sha="", github=github))
    assert answer.status_code == 202 and answer.json()["run"] == run.pk
    assert wait_until(lambda: len(github.reviews()) == 1)

    services.run_set_status(run=run, status="aborted", reason="smoke test failed", actor=lead)

    assert wait_until(lambda: answers(github))
    rejected = github.reviews()[-1]
    assert rejected["state"] == "rejected" and "was aborted" in rejected["comment"]
    report = OutboxMessage.objects.order_by("id").first()
    assert report.attempts == 2 and report.delivered_at and not report.last_error  # delivered before the abort


@pytest.mark.django_db(transaction=True)
def test_a_deployment_that_arrives_before_its_run_is_answered_once_the_run_opens(client, github, on_worker, member, small_template, api_as):
    early = deliver(client, deployment_event(github=github))

    assert early.status_code == 202 and early.json()["run"] is None
    pipeline = api_as(member)
    opened = pipeline.post("/api/v1/runs", {"template": "small-launch", "project": "shop", "environment": "production", "version": SHA})
    assert opened.status_code == 201
    assert wait_until(lambda: len(github.reviews()) == 1)
    assert f"deploycheck run #{opened.json_body['id']}" in github.reviews()[0]["comment"]

    go_live(services_run(opened.json_body["id"]))

    assert wait_until(lambda: answers(github))
    assert answers(github) == ["approved"] and github.reviews()[-1]["state"] == "approved"


def services_run(run_id):
    from checklists.models import Run

    return Run.objects.get(pk=run_id)


# --- The broker goes away -------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_ticks_and_sign_offs_answer_and_github_hears_once_it_is_back(
    client, github, own_worker, throwaway_redis, broker_at, make_user, small_template, api_as
):
    broker_at(throwaway_redis.url)
    own_worker.start(REDIS_URL=throwaway_redis.url, **github_env(github))
    lead = make_user("gil", "lead", "Tech Lead", "Security Lead")
    run = open_run(lead, small_template, SHA)
    assert deliver(client, deployment_event(github=github)).status_code == 202
    assert wait_until(lambda: len(github.reviews()) == 1)

    throwaway_redis.stop()
    pipeline = api_as(lead)
    tag = run.items.get(text="Tag the release")
    ticked = pipeline.post(f"/api/v1/runs/{run.pk}/items/{tag.pk}", {"state": "done"})
    signed = [
        pipeline.post(f"/api/v1/runs/{run.pk}/signoffs", {"role": role, "decision": "approve", "override_reason": "launch window"})
        for role in ("Tech Lead", "Security Lead")
    ]

    assert ticked.status_code == 200 and ticked.json_body["state"] == "done"
    assert [s.status_code for s in signed] == [201, 201] and signed[-1].json_body["run_status"] == "completed"
    answer = OutboxMessage.objects.get(payload__body__state="approved")
    assert answer.state == "pending" and answer.attempts == 0
    assert answers(github) == []

    throwaway_redis.start()  # back; the beat's next sweep publishes what waited

    assert wait_until(lambda: beat_sweeps_outbox(own_worker.queue), timeout=15)
    assert wait_until(lambda: answers(github), timeout=60)
    assert answers(github) == ["approved"]
    # The report queued by the first sign-off while the broker was away was made moot by the answer.
    assert len(github.reviews()) == 2
    assert OutboxMessage.objects.filter(failed_at__isnull=False, last_error="superseded by the answer").count() == 1
