"""A project's notification receivers: add, remove, send a test, and read each one's last
delivery (its newest outbox message). Delivery itself is integrations/notify.py's."""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat

from ..errors import RuleError
from ..models import NotificationReceiver, OutboxMessage, Project
from .environments import clean_name

EVENTS = NotificationReceiver.EVENTS
URL_MAX = 2000
SECRET_MAX = 500


@dataclass
class Created:
    receiver: NotificationReceiver
    # The generated secret, shown this once; None when the caller gave one (or none is needed).
    generated_secret: str | None


def _events(value) -> list[str]:
    if value is None:
        return list(EVENTS)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"`events` is a list of event names among: {', '.join(EVENTS)}.")
    unknown = [v for v in value if v not in EVENTS]
    if unknown:
        raise RuleError(f"Unknown event {unknown[0]!r}: choose among {', '.join(EVENTS)}.")
    if not value:
        raise RuleError("Choose at least one event.")
    return [name for name in EVENTS if name in value]


def _url(value) -> str:
    url = str(value or "").strip()
    if not url:
        raise RuleError("Give the webhook's URL.")
    if len(url) > URL_MAX:
        raise RuleError(f"The URL is {len(url)} characters long; at most {URL_MAX}.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise RuleError("That URL cannot be read.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RuleError("A webhook's URL starts with http:// or https:// and names a host.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise RuleError("A webhook's URL holds no spaces or control characters.")
    return url


def _address(value) -> str:
    address = str(value or "").strip()
    try:
        validate_email(address)
    except ValidationError:
        raise RuleError("Give one email address, such as ops@example.com.") from None
    return address


@transaction.atomic
def receiver_create(*, project_name: str, kind: str, target, events=None, secret=None, actor=None) -> Created:
    """Add a receiver; a JSON webhook without a secret gets a generated one (returned once)."""
    if kind not in dict(NotificationReceiver.KINDS):
        raise RuleError("`format` is json or slack (or email on the page).")
    events = _events(events)
    target = _address(target) if kind == NotificationReceiver.EMAIL else _url(target)
    generated = None
    if kind == NotificationReceiver.JSON:
        if secret is None or (isinstance(secret, str) and not secret.strip()):
            secret = generated = pysecrets.token_urlsafe(32)
        elif not isinstance(secret, str) or len(secret) > SECRET_MAX:
            raise RuleError(f"`secret` is text of at most {SECRET_MAX} characters.")
    elif secret not in (None, ""):
        raise RuleError("Only a JSON webhook is signed: a Slack webhook or an email takes no secret.")
    project, _ = Project.objects.get_or_create(name=clean_name(project_name, "project"))
    receiver = NotificationReceiver(project=project, kind=kind, target=target, events=events, created_by=actor)
    receiver.secret = secret if kind == NotificationReceiver.JSON else ""
    receiver.save()
    return Created(receiver, generated)


def receiver_delete(*, receiver: NotificationReceiver) -> None:
    # Messages still waiting for it are refused by the sender ("the receiver was removed").
    receiver.delete()


@transaction.atomic
def receiver_test(*, receiver: NotificationReceiver) -> OutboxMessage:
    """A message with event `test`, through the outbox like any other."""
    from ..integrations import notify

    return notify.queue(receiver, notify.test_payload(receiver))


def receiver_list(project: Project) -> list[NotificationReceiver]:
    """The project's receivers, each with `last` (its newest outbox message, or None), in two queries."""
    newest = OutboxMessage.objects.filter(subject=_receiver_subject()).order_by("-created_at", "-id").values("pk")[:1]
    receivers = list(project.receivers.annotate(last_id=Subquery(newest)))
    messages = OutboxMessage.objects.in_bulk([r.last_id for r in receivers if r.last_id])
    for receiver in receivers:
        receiver.last = messages.get(receiver.last_id)
    return receivers


def _receiver_subject():
    """`notify:<id>` of the outer receiver, as NotificationReceiver.subject spells it."""
    return Concat(Value("notify:"), Cast(OuterRef("pk"), CharField()))


def delivery_json(message: OutboxMessage | None) -> dict | None:
    """A receiver's last delivery as the API and the page show it."""
    if message is None:
        return None
    return {
        "status": message.state,
        "event": message.payload.get("event"),
        "at": (message.delivered_at or message.failed_at or message.created_at).isoformat(),
        "attempts": message.attempts,
        "error": message.last_error or None,
    }


def base_url_set() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "DEPLOYCHECK_BASE_URL", ""))
