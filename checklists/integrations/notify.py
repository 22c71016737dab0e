"""Notifications: a project's receivers (JSON and Slack-format webhooks, email) hear about its
runs (CONTRACT.md, "Outgoing notifications").

The announcer turns the audit events a run change wrote into one outbox row per receiver that
chose that event, inside the change's transaction; the senders deliver them later from a
worker. A receiver that hangs or refuses costs a worker thread its timeout, never a tick.

Webhook POSTs go through the verifications' guarded network helper (verifications/net.py):
DEPLOYCHECK_CHECK_DENY_NETS and DEPLOYCHECK_CHECK_ALLOW_NETS apply to every address a webhook
resolves to, at the moment it connects, so a receiver cannot be used to reach what a check may
not. An address they refuse fails the message for good, with `refused: ...` as its error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..choices import Action, ItemState, RunStatus, VerificationStatus
from ..models import NotificationReceiver, OutboxMessage, RunItem

logger = logging.getLogger(__name__)

JSON, SLACK, EMAIL = "notify.json", "notify.slack", "notify.email"
KIND_OF = {NotificationReceiver.JSON: JSON, NotificationReceiver.SLACK: SLACK, NotificationReceiver.EMAIL: EMAIL}
TEST = "test"
SIGNATURE_HEADER = "X-Deploycheck-Signature"
USER_AGENT = "deploycheck-notify/1.0"
# What is kept of a receiver's answer for the error shown on its page.
ANSWER_LIMIT = 300

# Audit actions that may be a notification; which ones are is decided per event below.
WATCHED = {
    Action.RUN_START,
    Action.ITEM_STATE,
    Action.VERIFICATION_RESULT,
    Action.SIGNOFF_APPROVE,
    Action.SIGNOFF_REJECT,
    Action.RUN_LIVE,
    Action.RUN_STATUS,
}
STATUS_WORDS = {RunStatus.ABORTED: "was aborted", RunStatus.ROLLED_BACK: "was rolled back", RunStatus.COMPLETED: "is live"}


def signature(secret: str, body: bytes) -> str:
    """`sha256=` and the HMAC-SHA256 of the exact body bytes under the receiver's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def base_url() -> str:
    return (getattr(settings, "DEPLOYCHECK_BASE_URL", "") or "").rstrip("/")


# --- What happened, as a notification -------------------------------------------------------


def event_name(event) -> str | None:
    """The notification an audit event stands for, or None."""
    after = event.after if isinstance(event.after, dict) else {}
    if event.action == Action.ITEM_STATE:
        return "item.blocked" if after.get("state") == ItemState.BLOCKED else None
    if event.action == Action.VERIFICATION_RESULT:
        failing = (VerificationStatus.FAILED, VerificationStatus.ERROR)
        return "verification.failed" if after.get("status") in failing else None
    if event.action in WATCHED:
        return str(event.action)
    return None


def run_json(run) -> dict:
    return {
        "id": run.pk,
        "html_url": base_url() + run.get_absolute_url(),
        "project": run.project.name,
        "environment": run.environment.name,
        "version": run.version_label,
        "status": run.status,
    }


def _detail(name: str, event, run, item) -> dict:
    after = event.after if isinstance(event.after, dict) else {}
    who = event.actor_name
    label = f"{run.project.name} {run.environment.name} {run.version_label}"
    title = f"“{item.text[:200]}”" if item is not None else "an item"
    if name == "run.start":
        text, extra = f"{who} started {label} ({after.get('template', run.template_name)})", {"template": after.get("template", run.template_name)}
    elif name == "item.blocked":
        text, extra = f"{who} blocked {title} on {label}: {after.get('reason', '')}", {"reason": after.get("reason", "")}
    elif name == "verification.failed":
        extra = {key: after.get(key) for key in ("kind", "status", "message")}
        text = f"The {after.get('kind', '')} check of {title} on {label} {after.get('status', 'failed')}: {after.get('message', '')}"
    elif name in ("signoff.approve", "signoff.reject"):
        extra = {key: after.get(key) for key in ("role", "comment")}
        verb = "approved" if name == "signoff.approve" else "rejected"
        text = f"{who} {verb} {label}" + (f" as {after['role']}" if after.get("role") else "") + (f": {after['comment']}" if after.get("comment") else "")
    elif name == "run.live":
        text, extra = f"{label} is live ({who})", {}
    else:  # run.status
        status = after.get("status", run.status)
        extra = {"status": status, "reason": after.get("reason", "")}
        text = f"{label} {STATUS_WORDS.get(status, 'changed to ' + str(status))} by {who}: {after.get('reason', '')}"
    return {"text": text.strip().rstrip(":"), "actor": who, **extra}


def payload_json(name: str, event, run, item) -> dict:
    """The contract's body: {event, at, run, item?, detail}."""
    body = {"event": name, "at": event.at.isoformat(), "run": run_json(run)}
    if item is not None:
        body["item"] = {"id": item.pk, "title": item.text}
    body["detail"] = _detail(name, event, run, item)
    return body


def test_payload(receiver) -> dict:
    return {
        "event": TEST,
        "at": timezone.now().isoformat(),
        "run": None,
        "detail": {"text": f"A test from deploycheck for {receiver.project.name}: this receiver is set up.", "project": receiver.project.name},
    }


def _message(receiver, body: dict) -> dict:
    """The outbox payload for one receiver: what its sender needs, nothing secret."""
    run = body.get("run")
    link = run["html_url"] if run else ""
    text = body["detail"]["text"]
    if receiver.kind == NotificationReceiver.JSON:
        return {"receiver": receiver.pk, "event": body["event"], "body": body}
    if receiver.kind == NotificationReceiver.SLACK:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        line = f"{escaped} <{link}|run #{run['id']}>" if run else escaped
        return {"receiver": receiver.pk, "event": body["event"], "body": {"text": line}}
    subject = f"[deploycheck] {text}"[:150].replace("\n", " ").replace("\r", " ")
    lines = [text, ""]
    if run:
        lines += [f"Run #{run['id']}: {link}", f"Project {run['project']}, environment {run['environment']}, version {run['version']}, status {run['status']}."]
    lines += ["", f"Event: {body['event']} at {body['at']}.", "You get this because a lead of the project added this address on its Notifications page."]
    return {"receiver": receiver.pk, "event": body["event"], "mail_subject": subject, "mail_body": "\n".join(lines)}


def queue(receiver, body: dict, run=None):
    from ..services.outbox import outbox_put

    return outbox_put(kind=KIND_OF[receiver.kind], target=receiver.target, payload=_message(receiver, body), subject=receiver.subject, run=run)


def _queue_all(rows: list[OutboxMessage]) -> None:
    """outbox_put for many messages at once: one publish after the commit, not one each. With the
    broker down each publish costs its connection attempts, and a change that owes five
    receivers must not pay them five times."""
    from ..services.outbox import outbox_publish

    ids = [message.pk for message in OutboxMessage.objects.bulk_create(rows)]
    transaction.on_commit(lambda: outbox_publish(ids, fresh=True), robust=True)


# --- The announcer --------------------------------------------------------------------------


def on_run_events(run, events) -> None:
    """The kernel's announce hook. Returns before touching the database unless an event is one
    a receiver may want; a fault here never keeps a change from happening."""
    named = [(name, event) for event in events if event.action in WATCHED and (name := event_name(event))]
    if not named or run.imported:  # an imported past run is a record, not a launch
        return
    try:
        with transaction.atomic():
            _announce(run, named)
    except Exception:
        logger.exception("notify: could not queue the notifications for run %s", run.pk)


def _announce(run, named) -> None:
    receivers = list(NotificationReceiver.objects.filter(project_id=run.project_id))
    wanted = {name for name, _ in named} & {name for receiver in receivers for name in receiver.events}
    if not wanted:
        return
    item_ids = {event.item_id for name, event in named if name in wanted and event.item_id}
    items = {item.pk: item for item in RunItem.objects.filter(pk__in=item_ids).only("id", "text")} if item_ids else {}
    rows = []
    for name, event in named:
        if name not in wanted:
            continue
        body = payload_json(name, event, run, items.get(event.item_id))
        for receiver in receivers:
            if name in receiver.events:
                payload = _message(receiver, body)
                rows.append(OutboxMessage(kind=KIND_OF[receiver.kind], target=receiver.target, payload=payload, subject=receiver.subject, run=run))
    _queue_all(rows)


# --- The senders ----------------------------------------------------------------------------


def _receiver(message):
    from ..services.outbox import DeliveryRefused

    receiver = NotificationReceiver.objects.filter(pk=message.payload.get("receiver")).first()
    if receiver is None:
        raise DeliveryRefused("the receiver was removed")
    return receiver


def _post(message, body: bytes, headers: dict) -> None:
    from ..services.outbox import DeliveryRefused
    from ..verifications import net

    deadline = net.Deadline(float(getattr(settings, "DEPLOYCHECK_NOTIFY_TIMEOUT", 10)))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with deadline:
            answer = net.fetch(message.target, deadline, method="POST", follow=False, headers=headers, data=body, body_limit=4096)
    except (net.Denied, net.ConfigError) as exc:
        raise DeliveryRefused(f"refused: {exc}") from None
    except net.NetError as exc:
        raise RuntimeError(str(exc)) from None
    if 200 <= answer.status < 300:
        return
    said = f"the receiver answered {answer.status}: {answer.text[:ANSWER_LIMIT]}".rstrip(": ")
    if 300 <= answer.status < 400:
        raise DeliveryRefused(f"{said} (a webhook's redirect is not followed: give its final URL)")
    if 400 <= answer.status < 500 and answer.status not in (408, 425, 429):
        raise DeliveryRefused(said)
    raise RuntimeError(said)


def json_send(message) -> None:
    receiver = _receiver(message)
    body = json.dumps(message.payload["body"], separators=(",", ":"), ensure_ascii=False).encode()
    _post(message, body, {SIGNATURE_HEADER: signature(receiver.secret, body), "X-Deploycheck-Event": message.payload.get("event", "")})


def slack_send(message) -> None:
    _receiver(message)
    _post(message, json.dumps(message.payload["body"], ensure_ascii=False).encode(), {})


def email_send(message) -> None:
    from django.core.mail import send_mail

    _receiver(message)
    send_mail(message.payload["mail_subject"], message.payload["mail_body"], None, [message.target], fail_silently=False)


SENDERS = {JSON: json_send, SLACK: slack_send, EMAIL: email_send}
