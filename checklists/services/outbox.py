"""The outbox: what deploycheck owes the outside world, kept in the database until it is delivered.

A service that causes a message calls `outbox_put` inside its own transaction (a run change
calls it from the kernel's announce hook, `run_events_announce`), so the message exists if and
only if the change does. After commit the message is handed to Celery; the task claims it with a
conditional UPDATE (so a redelivered or doubly published task sends it once), calls the sender
its `kind` names in integrations.SENDERS, and records the outcome:

  * delivered: `delivered_at`;
  * refused for good (DeliveryRefused: a 4xx that will not change): `failed_at` and why;
  * anything else: `next_attempt_at` moves out by an exponential backoff and the task comes
    back (a short wait as a countdown task, a long one through the sweep), until
    OUTBOX_MAX_ATTEMPTS, then `failed_at`.

With the broker down nothing is lost: the change answers as usual, the publish fails quietly,
and the beat's `outbox_sweep` publishes every message that is due once the broker is back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import OutboxMessage

logger = logging.getLogger(__name__)

# A claimed message is out of the sweep's sight this long (a worker that dies mid-delivery
# leaves it due again after that).
LEASE_SECONDS = 120
# The sweep leaves a fresh message this long to the publish that followed its commit.
SWEEP_GRACE_SECONDS = 20
# A retry due sooner than this waits as a countdown task; later ones are the sweep's.
COUNTDOWN_MAX_SECONDS = 300
BACKOFF_MAX_SECONDS = 3600


class DeliveryRefused(Exception):
    """The receiver refused the message for good (trying again would be refused again)."""


def _backoff(attempts: int) -> float:
    base = float(getattr(settings, "DEPLOYCHECK_OUTBOX_RETRY_SECONDS", 10))
    return min(base * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def outbox_put(*, kind: str, target: str, payload: dict, subject: str = "", run=None) -> OutboxMessage:
    """Queue a message in the caller's transaction; it is published when that commits."""
    from ..integrations import SENDERS

    if kind not in SENDERS:
        raise ValueError(f"no sender for outbox kind {kind!r}")
    message = OutboxMessage.objects.create(kind=kind, target=target, payload=payload, subject=subject, run=run)
    transaction.on_commit(lambda: outbox_publish([message.pk], fresh=True), robust=True)
    return message


def outbox_retire(*, subject: str, kind: str, reason: str) -> int:
    """Give up on messages of a subject still waiting (a report the final answer makes moot)."""
    return OutboxMessage.objects.filter(subject=subject, kind=kind, delivered_at__isnull=True, failed_at__isnull=True).update(
        failed_at=timezone.now(), last_error=reason
    )


def outbox_publish(ids: list[int], *, countdown: float | None = None, fresh: bool = False) -> bool:
    """Hand messages to the workers. When the broker refuses `fresh` ones (just committed),
    they are made due for the sweep at once rather than after its grace, so the answer follows
    the broker's return."""
    from deploycheck.celery import publisher

    from ..tasks import outbox_deliver

    try:
        with publisher() as broker:
            for pk in ids:
                outbox_deliver.apply_async(
                    args=[pk], countdown=countdown, retry=False, connection=broker, queue=settings.CELERY_TASK_DEFAULT_QUEUE
                )
        return True
    except Exception as exc:
        logger.warning("outbox: could not publish %s (%s); the sweep sends them when the broker is back", ids, exc.__class__.__name__)
        if fresh:
            overdue = timezone.now() - timedelta(seconds=SWEEP_GRACE_SECONDS)
            OutboxMessage.objects.filter(pk__in=ids, attempts=0, delivered_at__isnull=True).update(next_attempt_at=overdue)
        return False


def outbox_deliver(message_id: int) -> str | None:
    """One attempt at one message; answers its state afterwards, or None when not ours to send."""
    from ..integrations import SENDERS

    now = timezone.now()
    claimed = OutboxMessage.objects.filter(
        pk=message_id, delivered_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
    if not claimed:
        return None
    message = OutboxMessage.objects.get(pk=message_id)
    retry_in = None
    try:
        SENDERS[message.kind](message)
    except DeliveryRefused as exc:
        message.failed_at, message.last_error = timezone.now(), str(exc)[:2000]
        logger.warning("outbox: %s %s refused: %s", message.kind, message.pk, exc)
    except Exception as exc:
        message.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if message.attempts >= int(getattr(settings, "DEPLOYCHECK_OUTBOX_MAX_ATTEMPTS", 12)):
            message.failed_at = timezone.now()
            logger.warning("outbox: %s %s gave up after %s attempts: %s", message.kind, message.pk, message.attempts, exc)
        else:
            retry_in = _backoff(message.attempts)
            message.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
            logger.info("outbox: %s %s attempt %s failed (%s); again in %ss", message.kind, message.pk, message.attempts, exc, retry_in)
    else:
        message.delivered_at, message.last_error = timezone.now(), ""
    message.save(update_fields=["delivered_at", "failed_at", "last_error", "next_attempt_at"])
    if retry_in is not None and retry_in <= COUNTDOWN_MAX_SECONDS:
        outbox_publish([message.pk], countdown=retry_in)
    return message.state


def outbox_sweep(limit: int = 500) -> int:
    """Publish what is due and nobody sent: the broker was down at commit, a retry's countdown
    task was lost, a worker died holding a lease. The claim keeps a message from going twice."""
    cutoff = timezone.now() - timedelta(seconds=SWEEP_GRACE_SECONDS)
    due = list(
        OutboxMessage.objects.filter(delivered_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if due:
        outbox_publish(due)
    return len(due)


def run_events_announce(run, events) -> None:
    """The kernel's hook: a run change wrote these audit events (not yet committed). Each
    integration queues what it owes for them in this same transaction."""
    from ..integrations import ANNOUNCERS

    for announce in ANNOUNCERS:
        announce(run, events)
