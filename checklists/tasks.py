"""Thin Celery tasks: take an id, call a service."""

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def verification_run(result_id: int) -> None:
    if not services.verification_claim(result_id):
        return
    try:
        services.verification_execute(result_id)
    except Exception as exc:
        # Checks never raise; this is our own failure, recorded so the page does not wait forever.
        log.exception("verification %s failed inside deploycheck", result_id)
        services.verification_record(result_id=result_id, status="error", message=f"deploycheck could not run this check ({exc.__class__.__name__}).")


@shared_task(ignore_result=True)
def verification_sweep() -> int:
    return services.verification_sweep()


@shared_task(ignore_result=True)
def verification_scheduled(run_id: int | None = None, environment_id: int | None = None) -> int:
    return services.verification_scheduled(run_id=run_id, environment_id=environment_id)
