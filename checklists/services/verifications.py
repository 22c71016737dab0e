"""Automated verifications: enqueue, claim, execute, record, apply, sweep, schedules.

A result's life: `queued` when someone asks (the item's verdict follows, live), `running` once
a worker claims it, then a finished verdict written as soon as its own check completes and
applied to the run by the kernel in batches. Every step that changes what a page shows bumps
the run's revision through the kernel; only the result rows themselves are written here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from math import ceil

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Value
from django.utils import timezone

from .. import health
from ..choices import Action, ItemState, RunStatus, VerificationStatus
from ..errors import QueueUnavailable, RuleError
from ..models import Environment, Run, RunVariable, VerificationResult
from ..secrets import SecretUnreadable
from ..verifications.base import errored
from .kernel import RunBusy, run_change

logger = logging.getLogger(__name__)

# How long a result may wait in the queue, or for a free slot, before the sweep calls it lost.
QUEUE_GRACE_SECONDS = 300
# A check's own timeout bounds its network waits; this covers resolving, TLS and writing back.
RUN_GRACE_SECONDS = 30
# How often a task hands the verdicts it has to the run while other checks of its batch still run.
APPLY_EVERY_SECONDS = 0.2


def _check_timeout(item) -> float:
    from ..verifications import registry
    from ..verifications.http import MAX_TIMEOUT

    try:
        return registry.timeout_for(item.check_kind, item.check_params)
    except (ValueError, registry.ParamError):
        # A `{{ timeout }}` placeholder, filled only when the check runs: the longest timeout a
        # check may have keeps the sweep from writing off one that is still within its own.
        return MAX_TIMEOUT


def verification_request(*, run: Run, actor, item_ids: list[int] | None = None, as_evidence: bool = False) -> list[VerificationResult]:
    """Record a queued check for each chosen item that has one; the items show `queued` live
    and hold the gate until their verdict comes. Publishing is verification_enqueue's job.

    On a live run only the after-go-live checks run, unless `as_evidence` (an environment's
    schedule): then every check runs again and its results join the run's record, while the
    items stay as they were signed off (the kernel never ticks a locked item).
    """
    if run.is_ended:
        raise RuleError(f"This run is {run.get_status_display().lower()}: nothing to verify.", status=409)
    chosen = run.items.exclude(check_kind="")
    if item_ids:
        chosen = chosen.filter(pk__in=item_ids)
    if run.is_live and not as_evidence:
        chosen = chosen.filter(after_go_live=True)
    ids = list(chosen.values_list("pk", flat=True))
    if not ids:
        raise RuleError("None of the chosen items has a verification to run.")
    with run_change(run.pk, actor=actor, item_ids=ids) as change:
        # Again under the lock: the run may have gone live or ended since it was read.
        if change.run.is_ended:
            raise RuleError(f"This run is {change.run.get_status_display().lower()}: nothing to verify.", status=409)
        now = change.now
        items = sorted((i for i in change.items.values() if i.after_go_live or as_evidence or not change.run.is_live), key=lambda i: i.position)
        if not items:
            raise RuleError("None of the chosen items has a verification to run.")
        results = VerificationResult.objects.bulk_create(
            [
                VerificationResult(
                    run_id=run.pk,
                    item=item,
                    kind=item.check_kind,
                    requested_by=actor,
                    queued_at=now,
                    timeout=timedelta(seconds=timeout),
                    deadline_at=now + timedelta(seconds=timeout + QUEUE_GRACE_SECONDS),
                )
                for item, timeout in ((item, _check_timeout(item)) for item in items)
            ]
        )
        for item in items:
            change.verdict(item, queued_at=now, status=VerificationStatus.QUEUED)
        change.touch(*items)
    return results


def verification_enqueue(*, run: Run, actor, item_ids: list[int] | None = None, as_evidence: bool = False) -> list[VerificationResult]:
    """Queue a check for each chosen item that has one, and hand them to the workers.

    With the broker down nothing is recorded and the caller gets QueueUnavailable (503).
    """
    problem = health.broker_ready()
    if problem:
        raise QueueUnavailable(f"The verification queue is unavailable ({problem}); nothing was queued. Tick items by hand or try again.")
    results = verification_request(run=run, actor=actor, item_ids=item_ids, as_evidence=as_evidence)
    published = []
    try:
        _publish([r.pk for r in results], published)
    except Exception as exc:
        # The broker went away between the ping and the publish: what never left is an error
        # now, through the kernel, so the item's verdict and the gate do not wait for it.
        for pk in [r.pk for r in results if r.pk not in set(published)]:
            verification_record(result_id=pk, status=VerificationStatus.ERROR, message="Not queued: the verification queue went away.")
        raise QueueUnavailable(
            f"The verification queue is unavailable ({exc.__class__.__name__}); {len(published)} of {len(results)} checks were queued."
        ) from exc
    return results


def _publish(ids: list[int], published: list[int] | None = None) -> None:
    """Hand results to the workers, a few per task, on the configured queue (read now, so a
    deployment or a test may point it elsewhere)."""
    from ..tasks import verification_run

    from deploycheck.celery import publisher

    with publisher() as broker:
        for chunk in _chunks(ids):
            verification_run.apply_async(args=[chunk], retry=False, connection=broker, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
            if published is not None:
                published.extend(chunk)


def _chunks(ids: list[int]) -> list[list[int]]:
    """A task carries a few checks when many are asked for at once.

    Each Celery task costs the worker several milliseconds of interpreter time of its own;
    with 300 checks that overhead, not the network, decided how long "Verify all" took.
    """
    size = min(16, max(1, ceil(4 * len(ids) / max(1, settings.CELERY_WORKER_CONCURRENCY))))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def verification_claim(result_ids: list[int], *, worker: str = "") -> list[int]:
    """Claim queued results for this worker; a redelivered task finds nothing left to claim.

    The claimed items show `running` on every open page: the revision moves with them.
    `worker` (the Celery node name) lets that node, restarted, take back what it lost.
    """
    now = timezone.now()
    # One conditional UPDATE; the rows this task won carry its own claim instant (a second
    # delivery of the same task, racing, finds them no longer queued).
    VerificationResult.objects.filter(pk__in=result_ids, status=VerificationStatus.QUEUED).update(
        status=VerificationStatus.RUNNING,
        started_at=now,
        claimed_by=worker[:200],
        # Until the check gets a slot: it may wait behind others in this worker.
        deadline_at=now + timedelta(seconds=QUEUE_GRACE_SECONDS),
    )
    claimed = list(
        VerificationResult.objects.filter(pk__in=result_ids, status=VerificationStatus.RUNNING, started_at=now).values_list(
            "pk", "run_id", "item_id", "queued_at"
        )
    )
    by_run: dict[int, list[tuple]] = {}
    for row in claimed:
        by_run.setdefault(row[1], []).append(row)
    for run_id, rows in by_run.items():
        with run_change(run_id, actor=None, item_ids=[item_id for _, _, item_id, _ in rows]) as change:
            for _, _, item_id, queued_at in rows:
                change.verdict(change.item(item_id), queued_at=queued_at, status=VerificationStatus.RUNNING)
            change.touch(*(change.item(item_id) for _, _, item_id, _ in rows))
    return [row[0] for row in claimed]


_CHECK_SLOTS: threading.BoundedSemaphore | None = None


def check_slots() -> threading.BoundedSemaphore:
    """At most the worker's concurrency of checks talk to the network at once, in all tasks."""
    global _CHECK_SLOTS
    if _CHECK_SLOTS is None:
        _CHECK_SLOTS = threading.BoundedSemaphore(max(1, settings.CELERY_WORKER_CONCURRENCY))
    return _CHECK_SLOTS


def verification_execute(result_ids: list[int]) -> None:
    """Run claimed checks side by side; record each verdict as soon as its own check ends.

    Every database call stays in this (the task's) thread: a helper thread that touched the
    ORM would open a connection Django never closes. A check's deadline starts when it gets
    a slot, not when the batch was claimed, so a check waiting behind slow ones is never
    written off by the sweep.
    """
    from ..verifications import registry

    rows = list(VerificationResult.objects.filter(pk__in=result_ids).values_list("pk", "run_id", "timeout", "item__check_kind", "item__check_params"))
    variables: dict[int, dict] = {}
    secrets: dict[int, list] = {}
    unreadable: dict[int, set] = {}
    for variable in RunVariable.objects.filter(run_id__in={row[1] for row in rows}).only("run_id", "name", "stored", "secret"):
        try:
            value = variable.value
        except SecretUnreadable:
            # Encrypted under a key this server no longer has: never run with an empty value.
            unreadable.setdefault(variable.run_id, set()).add(variable.name)
            continue
        variables.setdefault(variable.run_id, {})[variable.name] = value
        if variable.secret and value:
            secrets.setdefault(variable.run_id, []).append(value)
    slots = check_slots()

    def check(kind, params, run_id):
        try:
            lost = sorted(set(registry.placeholders(params)) & unreadable.get(run_id, set()))
            if lost:
                return errored(f"secret unreadable: enter {', '.join(lost)} again (it was saved under another SECRET_KEY)", unreadable=lost)
            return registry.run(kind, dict(params), variables.get(run_id, {}), secrets=secrets.get(run_id, []))
        finally:
            slots.release()

    waiting = list(rows)
    running: dict = {}
    finished: dict[int, list[int]] = {}
    applied_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(rows)), thread_name_prefix="check") as pool:
        while waiting or running:
            started = []
            while waiting and slots.acquire(timeout=0 if running else 0.05):
                pk, run_id, timeout, kind, params = waiting[0]
                try:
                    future = pool.submit(check, kind, params, run_id)
                except BaseException:
                    slots.release()  # never started: its slot goes back
                    raise
                waiting.pop(0)
                started.append(pk)
                running[future] = (pk, run_id)
            if started:
                # Each check's own deadline starts now that it has its slot.
                VerificationResult.objects.filter(pk__in=started, status=VerificationStatus.RUNNING).update(
                    deadline_at=ExpressionWrapper(
                        Value(timezone.now() + timedelta(seconds=RUN_GRACE_SECONDS)) + F("timeout"), output_field=DateTimeField()
                    )
                )
            if running:
                done, _ = wait(list(running), timeout=APPLY_EVERY_SECONDS if (waiting or finished) else None, return_when=FIRST_COMPLETED)
                for future in done:
                    pk, run_id = running.pop(future)
                    outcome = future.result()
                    if _result_write(pk, outcome.status, outcome.message, outcome.evidence, outcome.duration_ms):
                        finished.setdefault(run_id, []).append(pk)
            # Verdicts reach the run a few times a second, not once per check: each apply takes
            # the run's lock, and a batch of them costs hardly more than one.
            if finished and (not running or time.monotonic() - applied_at >= APPLY_EVERY_SECONDS):
                for run_id, pks in finished.items():
                    _apply_until_done(run_id, pks)
                finished, applied_at = {}, time.monotonic()
    for run_id, pks in finished.items():
        _apply_until_done(run_id, pks)


def _result_write(
    result_id: int, status: str, message: str, evidence: dict | None, duration_ms: int | None, *, past_deadline: bool = False
) -> bool:
    """Finish a result once: a redelivered task or the sweep finds nothing left to write.

    The sweep writes only what is still past its deadline at that instant: a result claimed
    (and given a new deadline) since the sweep looked is the worker's to finish.
    """
    unfinished = VerificationResult.objects.filter(pk=result_id, status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING])
    if past_deadline:
        unfinished = unfinished.filter(deadline_at__lt=timezone.now())
    return bool(unfinished.update(status=status, message=message[:2000], evidence=evidence or {}, duration_ms=duration_ms, finished_at=timezone.now()))


def verification_abandon(result_ids: list[int], message: str) -> None:
    """A task failed inside deploycheck: what it had not finished is an error, and what it had
    finished but not yet applied reaches the run now rather than at the next sweep."""
    for pk in result_ids:
        _result_write(pk, VerificationStatus.ERROR, message, None, None)
    by_run: dict[int, list[int]] = {}
    for pk, run_id in VerificationResult.objects.filter(pk__in=result_ids, applied_at__isnull=True).values_list("pk", "run_id"):
        by_run.setdefault(run_id, []).append(pk)
    for run_id, pks in by_run.items():
        _apply_until_done(run_id, pks)


def _apply_until_done(run_id: int, result_ids: list[int]) -> None:
    """Either this task applies the batch its results are in, or it sees that another did.

    Nobody queues for the run's row lock: with many results landing at once, a line of
    waiters on one row costs far more than the few statements a batch needs. Taking the
    lock means applying every committed result, these included.
    """
    while verification_apply(run_id) is None:
        time.sleep(0.1)
        if not VerificationResult.objects.filter(pk__in=result_ids, applied_at__isnull=True).exists():
            return


def verification_record(
    *, result_id: int, status: str, message: str, evidence: dict | None = None, duration_ms: int | None = None, past_deadline: bool = False
) -> bool:
    """Write a finished result once, then see it applied to the run (events, tick, revision).

    Answers False when the result was already finished (a redelivered task, the sweep).
    """
    if not _result_write(result_id, status, message, evidence, duration_ms, past_deadline=past_deadline):
        return False
    _apply_until_done(VerificationResult.objects.values_list("run_id", flat=True).get(pk=result_id), [result_id])
    return True


def verification_apply(run_id: int) -> int | None:
    """Apply every finished, unapplied result of a run in one kernel change.

    Answers how many it applied, or None when another transaction holds the run's lock
    (the caller then looks again: see _apply_until_done).
    """
    try:
        with run_change(run_id, actor=None, skip_locked=True) as change:
            if connection.vendor == "postgresql":
                # A result lost to a crash in this instant is found by the sweep and run again;
                # waiting for each WAL flush here would serialise the disk's latency.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
            pending = list(
                VerificationResult.objects.filter(run_id=run_id, finished_at__isnull=False, applied_at__isnull=True)
                .only("id", "kind", "status", "message", "duration_ms", "item_id", "queued_at")
                .select_for_update()
                .order_by("finished_at", "id")
            )
            if not pending:
                return 0
            change.load_items({r.item_id for r in pending})
            run = change.run
            for result in pending:
                item = change.item(result.item_id)
                change.verdict(item, queued_at=result.queued_at, status=result.status)
                change.record(
                    Action.VERIFICATION_RESULT,
                    item=item,
                    after={"kind": result.kind, "status": result.status, "message": result.message[:500], "duration_ms": result.duration_ms},
                )
                # A pass ticks only what nobody has decided on: a person's "blocked" or "skipped" stands.
                if (
                    result.status == VerificationStatus.PASSED
                    and item.verdict_queued_at == result.queued_at
                    and item.state in (ItemState.TODO, ItemState.IN_PROGRESS)
                    and run.item_change_refusal(item) is None
                ):
                    change.set_state(item, ItemState.DONE, "")
            VerificationResult.objects.filter(pk__in=[r.pk for r in pending]).update(applied_at=change.now)
        for result in pending:  # after the commit: a log line never claims what did not happen
            logger.info(
                "%s check %s on run %s item %s", result.kind, result.status, run_id, result.item_id,
                extra={"run": run_id, "item": result.item_id, "kind": result.kind, "status": result.status, "duration_ms": result.duration_ms},
            )
        return len(pending)
    except RunBusy:
        return None


def verification_sweep() -> int:
    """Results past their own deadline (worker lost, queue wiped) become errors; nothing else.

    A verdict already written is never touched: _result_write only finishes what is still
    queued or running, and a running check's deadline starts when it got its slot.
    """
    # Finished but never applied: the worker died between writing and applying.
    orphaned = (
        VerificationResult.objects.filter(finished_at__lt=timezone.now() - timedelta(seconds=RUN_GRACE_SECONDS), applied_at__isnull=True)
        .values_list("run_id", flat=True)
        .distinct()
    )
    for run_id in list(orphaned):
        verification_apply(run_id)
    stuck = VerificationResult.objects.filter(status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING], deadline_at__lt=timezone.now())
    return _retry_or_write_off(stuck)


def verification_recover(*, worker: str) -> int:
    """A worker that starts under a node name takes back what that node was running when it
    died: those checks go back in the queue at once rather than at their deadline."""
    if not worker:
        return 0
    return _retry_or_write_off(VerificationResult.objects.filter(status=VerificationStatus.RUNNING, claimed_by=worker))


def _retry_or_write_off(lost) -> int:
    """A lost check (its worker died, or the queue dropped it) runs once more; lost a second
    time, it is an error that says so. Answers how many results were handled."""
    now = timezone.now()
    twice = list(lost.filter(attempts__gte=2).values_list("pk", "status"))  # read before the requeue below
    with transaction.atomic():
        # Locked, so a verdict written meanwhile, or another sweep, cannot interleave; one
        # UPDATE for all of them, each deadline from its own timeout.
        again = list(lost.filter(attempts__lt=2).select_for_update(skip_locked=True).values_list("pk", flat=True))
        VerificationResult.objects.filter(pk__in=again).update(
            status=VerificationStatus.QUEUED, attempts=F("attempts") + 1, started_at=None, claimed_by="",
            deadline_at=ExpressionWrapper(Value(now + timedelta(seconds=QUEUE_GRACE_SECONDS)) + F("timeout"), output_field=DateTimeField()),
        )
    if again:
        logger.warning("queued %s lost checks again: %s", len(again), again[:20])
        try:
            _publish(again)
        except Exception as exc:  # the broker is down: the next sweep finds them past deadline
            logger.warning("could not queue lost checks again (%s)", exc.__class__.__name__)
    count = len(again)
    for pk, status in twice:
        where = "waiting in the queue" if status == VerificationStatus.QUEUED else "running"
        if verification_record(
            result_id=pk,
            status=VerificationStatus.ERROR,
            message=f"No result: the check was lost twice, last while {where} (a worker stopped or the queue lost it).",
            past_deadline=True,
        ):
            count += 1
    return count


# --- Scheduled re-verification --------------------------------------------------------------


def _schedule_name(*, run: Run | None = None, environment: Environment | None = None) -> str:
    return f"deploycheck: verify run {run.pk}" if run is not None else f"deploycheck: verify environment {environment.pk}"


def schedule_get(*, run: Run | None = None, environment: Environment | None = None) -> int | None:
    """The re-verification interval in minutes, or None."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=_schedule_name(run=run, environment=environment), enabled=True).select_related("interval").first()
    return task.interval.every if task is not None and task.interval is not None else None


def schedule_set(*, every_minutes: int | None, run: Run | None = None, environment: Environment | None = None, actor=None) -> int | None:
    """Re-verify a run (its first-24-hours items) or an environment (daily, weekly) on an interval.

    `every_minutes` None or 0 stops it. The beat process picks changes up from the database.
    A run's schedule shows on its page, so the change goes through the kernel (revision).
    """

    if every_minutes and not 5 <= every_minutes <= 7 * 24 * 60:
        raise RuleError("Re-verify every 5 minutes at the most often, and at least once a week.")
    if run is None:
        return _schedule_write(every_minutes, _schedule_name(environment=environment), {"environment_id": environment.pk})
    with run_change(run.pk, actor=actor) as change:
        if every_minutes and change.run.is_ended:
            raise RuleError(f"This run is {change.run.get_status_display().lower()}: nothing to re-verify.", status=409)
        change.touch()
        return _schedule_write(every_minutes, _schedule_name(run=run), {"run_id": run.pk})


@transaction.atomic
def _schedule_write(every_minutes: int | None, name: str, kwargs: dict) -> int | None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if not every_minutes:
        PeriodicTask.objects.filter(name=name).delete()
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": "checklists.tasks.verification_scheduled", "interval": interval, "kwargs": json.dumps(kwargs), "enabled": True},
    )
    return every_minutes


def environment_latest_live_run(environment: Environment) -> Run | None:
    """What an environment's schedule re-verifies: the run that last went live there."""
    return Run.objects.filter(environment_id=environment.pk, status=RunStatus.COMPLETED).order_by("-completed_at").first()


def verification_scheduled(*, run_id: int | None = None, environment_id: int | None = None) -> int:
    """What a schedule does when it fires: queue the checks that still matter."""
    if environment_id is not None:
        run = environment_latest_live_run(Environment(pk=environment_id))
    else:
        run = Run.objects.filter(pk=run_id).first()
    if run is None or run.is_ended:
        if run is not None:
            _schedule_write(None, _schedule_name(run=run), {})
        return 0
    try:
        return len(verification_enqueue(run=run, actor=None, as_evidence=environment_id is not None))
    except QueueUnavailable:
        raise
    except RuleError:
        return 0
