"""deploycheck as a GitHub custom deployment protection rule (a GitHub App).

GitHub sends a `deployment_protection_rule` event when a job reaches an environment that has
the rule; deploycheck matches it to a run (CONTRACT.md: project = the repository's name,
environment = the GitHub environment, version = the deployment's sha, a 7+ character prefix
of it, or its ref unless that is the default branch; the newest such run, possibly opened
after the event), posts a status report with the run's link on the event's callback URL, and
answers `approved` when the run goes live, `rejected` when it is aborted or rolled back.

Every answer is an outbox row written in the transaction of the change that caused it
(services/outbox.py); delivering it authenticates as the App: a JWT signed with the App's key,
exchanged for an installation token, fresh for each answer. Only URLs under
DEPLOYCHECK_GITHUB_API_URL are ever called.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..choices import Action, RunStatus
from ..errors import RuleError
from ..models import GithubDeploymentRequest, Run

logger = logging.getLogger(__name__)

REVIEW = "github.review"
APPROVED, REJECTED = "approved", "rejected"
# GitHub keeps at most 10 status reports a deployment, each at most 1,024 characters.
MAX_REPORTS = 10
MAX_COMMENT = 1024
# A sha prefix shorter than this names too many commits to stand for a release.
MIN_SHA_PREFIX = 7
# GitHub gives a custom rule 30 days; a request older than that waits for nothing.
WAITING_DAYS = 30
# What the sweep matches again: requests that may have crossed a run opening at the same moment.
REMATCH_MINUTES = 10
CALLBACK_PATH = re.compile(r"^/repos/[^/]+/[^/]+/actions/runs/\d+/deployment_protection_rule$")
WATCHED = {Action.RUN_START, Action.RUN_LIVE, Action.RUN_STATUS, Action.SIGNOFF_APPROVE, Action.SIGNOFF_REJECT}
TIMEOUT = (5, 15)  # connect, read


# --- Configuration --------------------------------------------------------------------------


def api_url() -> str:
    return (getattr(settings, "DEPLOYCHECK_GITHUB_API_URL", "") or "https://api.github.com").rstrip("/")


def private_key() -> str:
    """DEPLOYCHECK_GITHUB_PRIVATE_KEY: the PEM itself (newlines may be written `\\n`), or a path to it."""
    value = (getattr(settings, "DEPLOYCHECK_GITHUB_PRIVATE_KEY", "") or "").strip()
    if not value:
        raise RuntimeError("DEPLOYCHECK_GITHUB_PRIVATE_KEY is not set: deploycheck cannot answer GitHub.")
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n")
    return Path(value).read_text()


def app_jwt(now: float | None = None) -> str:
    """The App's own credential (GitHub: RS256, issued 60 s in the past for clock drift,
    expiring at most 10 minutes after it was issued)."""
    import jwt

    app_id = str(getattr(settings, "DEPLOYCHECK_GITHUB_APP_ID", "") or "").strip()
    if not app_id:
        raise RuntimeError("DEPLOYCHECK_GITHUB_APP_ID is not set: deploycheck cannot answer GitHub.")
    issued = int(now if now is not None else time.time()) - 60
    return jwt.encode({"iat": issued, "exp": issued + 540, "iss": app_id}, private_key(), algorithm="RS256")


def signature_valid(body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 is `sha256=` and the HMAC-SHA256 of the raw body under the webhook secret."""
    secret = getattr(settings, "DEPLOYCHECK_GITHUB_WEBHOOK_SECRET", "") or ""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def callback_allowed(url: str) -> bool:
    """Only GitHub's own review endpoint, under DEPLOYCHECK_GITHUB_API_URL: a forged or
    misdirected event cannot make deploycheck post (with a GitHub token) anywhere else."""
    base = urlsplit(api_url())
    try:
        target = urlsplit(url)
    except ValueError:
        return False
    if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()) or target.query or target.fragment:
        return False
    prefix = base.path.rstrip("/")
    return target.path.startswith(prefix + "/") and bool(CALLBACK_PATH.match(target.path[len(prefix) :]))


def _session():
    import requests

    session = requests.Session()
    # Proxies from the environment would see the App's tokens (TRAPS.md: trust_env).
    session.trust_env = False
    session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "deploycheck"})
    return session


def installation_token(session, installation_id: int) -> str:
    url = f"{api_url()}/app/installations/{int(installation_id)}/access_tokens"
    response = session.post(url, headers={"Authorization": f"Bearer {app_jwt()}"}, timeout=TIMEOUT, allow_redirects=False)
    if response.status_code != 201:
        raise RuntimeError(f"GitHub refused an installation token ({response.status_code}): {response.text[:300]}")
    return response.json()["token"]


def review_send(message) -> None:
    """The outbox sender: one status report or answer on a deployment's callback URL."""
    from ..services.outbox import DeliveryRefused

    if not callback_allowed(message.target):
        raise DeliveryRefused(f"{message.target} is not under DEPLOYCHECK_GITHUB_API_URL ({api_url()}).")
    session = _session()
    token = installation_token(session, message.payload["installation_id"])
    response = session.post(
        message.target, json=message.payload["body"], headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, allow_redirects=False
    )
    if response.status_code in (200, 201, 204):
        return
    detail = f"GitHub answered {response.status_code}: {response.text[:300]}"
    if response.status_code in (400, 404, 410, 422):
        raise DeliveryRefused(detail)
    raise RuntimeError(detail)


# --- Receiving the event --------------------------------------------------------------------


def _text(value, name: str, *, required: bool = True, limit: int = 300) -> str:
    if value is None or value == "":
        if required:
            raise RuleError(f"The event has no {name}.")
        return ""
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        raise RuleError(f"The event's {name} is not a name deploycheck can match.")
    return value


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def version_matches(version: str, *, sha: str, ref: str) -> bool:
    """A run's version names this deployment: its sha or a 7+ character prefix, or its ref
    (already empty when that is the default branch: `main` is no release)."""
    if sha and len(version) >= MIN_SHA_PREFIX and sha.startswith(version):
        return True
    return bool(ref) and version == ref


def _parse(event: dict, delivery: str) -> dict:
    if not isinstance(event, dict):
        raise RuleError("The event is not a JSON object.")
    repository = event.get("repository") if isinstance(event.get("repository"), dict) else {}
    deployment = event.get("deployment") if isinstance(event.get("deployment"), dict) else {}
    installation = event.get("installation") if isinstance(event.get("installation"), dict) else {}
    full_name = _text(repository.get("full_name") or repository.get("name"), "repository")
    project = _text(repository.get("name") or full_name.rsplit("/", 1)[-1], "repository name", limit=200)
    default_branch = _text(repository.get("default_branch"), "default branch", required=False)
    sha = _text(deployment.get("sha") or event.get("sha"), "sha", required=False, limit=64).lower()
    if sha and not re.fullmatch(r"[0-9a-f]{7,64}", sha):
        raise RuleError("The deployment's sha is not a commit id.")
    ref = _short_ref(_text(deployment.get("ref") or event.get("ref"), "ref", required=False))
    if ref == default_branch or ref == sha:
        ref = ""
    installation_id = installation.get("id")
    if not isinstance(installation_id, int) or isinstance(installation_id, bool) or installation_id <= 0:
        raise RuleError("The event names no installation of the App (installation.id).")
    callback = _text(event.get("deployment_callback_url"), "deployment_callback_url", limit=2000)
    if not callback_allowed(callback):
        raise RuleError(f"The callback URL is not under DEPLOYCHECK_GITHUB_API_URL ({api_url()}); deploycheck will not call it.")
    deployment_id = deployment.get("id") if isinstance(deployment.get("id"), int) and not isinstance(deployment.get("id"), bool) else None
    return {
        "delivery": _text(delivery, "delivery id", required=False, limit=100),
        "repository": full_name,
        "project": project,
        "environment": _text(event.get("environment") or deployment.get("environment"), "environment", limit=200),
        "sha": sha,
        "ref": _text(ref, "ref", required=False),
        "deployment_id": deployment_id if deployment_id is None or 0 < deployment_id < 2**63 else None,
        "installation_id": installation_id if installation_id < 2**63 else 0,
        "callback_url": callback,
    }


def deployment_request_receive(event: dict, *, delivery: str = "", site_url: str = "") -> GithubDeploymentRequest:
    """Record a deployment waiting on deploycheck, and match it to its run if one is open yet.
    The same delivery again (GitHub redelivers) answers the request it made the first time."""
    fields = _parse(event, delivery)
    if not fields["installation_id"]:
        raise RuleError("The event's installation id is out of range.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                request = GithubDeploymentRequest.objects.create(site_url=site_url[:300], **fields)
        except IntegrityError:
            return GithubDeploymentRequest.objects.get(delivery=fields["delivery"])
        run = _newest_run(request)
        if run is not None:
            _attach(request, run)
    return request


def _newest_run(request: GithubDeploymentRequest) -> Run | None:
    """The newest run this deployment names, locked: a change to it (going live) waits for this
    transaction and then sees the request, or has happened and this sees its status."""
    versions = [request.sha[:n] for n in range(MIN_SHA_PREFIX, len(request.sha) + 1)]
    match = Q(version_label__in=versions) if versions else Q(pk__in=[])
    if request.ref:
        match |= Q(version_label=request.ref)
    newest = (
        Run.objects.filter(match, project__name__iexact=request.project, environment__name__iexact=request.environment, imported=False)
        .order_by("-started_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    if newest is None:
        return None
    return Run.objects.select_for_update().select_related("project", "environment").get(pk=newest)


# --- Answering ------------------------------------------------------------------------------


def _comment(request: GithubDeploymentRequest, run: Run, text: str) -> str:
    base = (getattr(settings, "DEPLOYCHECK_BASE_URL", "") or request.site_url or "").rstrip("/")
    link = base + run.get_absolute_url()
    room = MAX_COMMENT - len(link) - 1
    if len(text) > room:
        text = text[: room - 1] + "…"
    return f"{text} {link}"


def _gate_text(run: Run) -> str:
    from ..release_gate import run_release_gate

    return run_release_gate(run).summary()


def _queue(request: GithubDeploymentRequest, run: Run, body: dict) -> None:
    from ..services.outbox import outbox_put

    outbox_put(
        kind=REVIEW,
        target=request.callback_url,
        payload={"installation_id": request.installation_id, "body": body},
        subject=f"github:{request.pk}",
        run=run,
    )


def _report(request: GithubDeploymentRequest, run: Run, text: str) -> None:
    if request.reports >= MAX_REPORTS or request.answer:
        return
    _queue(request, run, {"environment_name": request.environment, "comment": _comment(request, run, text)})
    request.reports += 1
    GithubDeploymentRequest.objects.filter(pk=request.pk).update(reports=request.reports)


def _answer(request: GithubDeploymentRequest, run: Run, state: str) -> None:
    from ..services.outbox import outbox_retire

    if request.answer:
        return
    # A report still waiting (GitHub or the broker was away) would only arrive after the answer.
    outbox_retire(subject=f"github:{request.pk}", kind=REVIEW, reason="superseded by the answer")
    _queue(request, run, {"environment_name": request.environment, "state": state, "comment": _comment(request, run, _gate_text(run))})
    request.answer, request.answered_at = state, timezone.now()
    GithubDeploymentRequest.objects.filter(pk=request.pk).update(answer=state, answered_at=request.answered_at)


def _final_answer(run: Run) -> str | None:
    if run.status == RunStatus.COMPLETED:
        return APPROVED
    if run.status in (RunStatus.ABORTED, RunStatus.ROLLED_BACK):
        return REJECTED
    return None


def _attach(request: GithubDeploymentRequest, run: Run) -> None:
    request.run, request.matched_at = run, timezone.now()
    GithubDeploymentRequest.objects.filter(pk=request.pk).update(run=run, matched_at=request.matched_at)
    final = _final_answer(run)
    if final:
        _answer(request, run, final)
    else:
        _report(request, run, _gate_text(run))


def on_run_events(run: Run, events) -> None:
    """The kernel's announce hook: a run opened (deployments may be waiting for it), went live,
    ended, or a sign-off moved. Anything else returns before touching the database."""
    actions = {e.action for e in events} & WATCHED
    if not actions:
        return
    try:
        with transaction.atomic():
            _announce(run, actions)
    except Exception:
        # A fault here must not keep a launch from going live; the sweep answers what it missed.
        logger.exception("github: could not queue the answers for run %s", run.pk)


def _announce(run: Run, actions: set[str]) -> None:
    if Action.RUN_START in actions:
        if run.imported:  # a past run, imported from a filled-in checklist: no launch to wait for
            return
        waiting = GithubDeploymentRequest.objects.filter(
            run__isnull=True,
            answer="",
            project__iexact=run.project.name,
            environment__iexact=run.environment.name,
            received_at__gte=timezone.now() - timedelta(days=WAITING_DAYS),
        )
        for request in waiting:
            if version_matches(run.version_label, sha=request.sha, ref=request.ref):
                _attach(request, run)
        return
    pending = list(run.github_requests.filter(answer=""))
    if not pending:
        return
    final = _final_answer(run)
    for request in pending:
        if final:
            _answer(request, run, final)
        else:
            _report(request, run, _gate_text(run))


def github_requests_rematch() -> int:
    """The sweep: match requests that crossed a run opening at the same moment, and answer
    matched ones whose run ended without an answer queued. Answers how many it handled."""
    handled = 0
    recent = GithubDeploymentRequest.objects.filter(
        run__isnull=True, answer="", received_at__gte=timezone.now() - timedelta(minutes=REMATCH_MINUTES)
    ).values_list("pk", flat=True)
    unanswered = GithubDeploymentRequest.objects.filter(
        answer="", run__status__in=[RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.ROLLED_BACK]
    ).values_list("pk", flat=True)
    for pk in [*recent[:200], *unanswered[:200]]:
        with transaction.atomic():
            request = GithubDeploymentRequest.objects.select_for_update().get(pk=pk)
            if request.answer:
                continue
            run = (
                Run.objects.select_for_update().select_related("project", "environment").get(pk=request.run_id)
                if request.run_id
                else _newest_run(request)
            )
            if run is None:
                continue
            if request.run_id:
                final = _final_answer(run)
                if final:
                    _answer(request, run, final)
                    handled += 1
            else:
                _attach(request, run)
                handled += 1
    return handled
