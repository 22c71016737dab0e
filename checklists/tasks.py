"""Thin Celery tasks: take an id, call a service."""

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def verification_run(result_ids: list[int] | int) -> None:
    ids = [result_ids] if isinstance(result_ids, int) else list(result_ids)
    claimed = services.verification_claim(ids)
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
