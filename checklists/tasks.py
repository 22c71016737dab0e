"""Thin Celery tasks: take an id, call a service."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import services

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def verification_run(self, result_ids: list[int] | int) -> None:
    ids = [result_ids] if isinstance(result_ids, int) else list(result_ids)
    claimed = services.verification_claim(ids, worker=self.request.hostname or "")
    if not claimed:
        return
    try:
        services.verification_execute(claimed)
    except Exception as exc:
        # Checks never raise; this is our own failure, recorded so the page does not wait forever.
        log.exception("verifications %s failed inside deploycheck", claimed)
        services.verification_abandon(claimed, f"deploycheck could not run this check ({exc.__class__.__name__}).")


@shared_task(ignore_result=True)
def verification_sweep() -> int:
    return services.verification_sweep()


@shared_task(ignore_result=True)
def verification_scheduled(run_id: int | None = None, environment_id: int | None = None) -> int:
    return services.verification_scheduled(run_id=run_id, environment_id=environment_id)


@worker_ready.connect
def recover_lost_checks(sender=None, **_):
    """A worker restarted under its node name (celery@$HOSTNAME) queues again, at once, the
    checks it was running when it died."""
    hostname = getattr(sender, "hostname", "") or ""
    try:
        recovered = services.verification_recover(worker=hostname)
    except Exception:  # never keep a worker from starting; the sweep will find them
        log.exception("could not recover the checks %s was running", hostname)
        return
    if recovered:
        log.warning("%s queued again %s checks it was running when it stopped", hostname, recovered)


# --- The outbox (services/outbox.py) ---------------------------------------------------------


@shared_task(ignore_result=True)
def outbox_deliver(message_id: int) -> str | None:
    from .services import outbox

    return outbox.outbox_deliver(message_id)


@shared_task(ignore_result=True)
def outbox_sweep() -> int:
    """Beat: publish what is due and nobody sent (the broker was down), and let GitHub
    requests that crossed a run opening find it."""
    from .integrations import github
    from .services import outbox

    github.github_requests_rematch()
    return outbox.outbox_sweep()
