"""One slow target never holds back, or corrupts, the verdicts of the checks it shares a task with."""

import time

import pytest

from checklists import markdown as md
from checklists import services
from checklists.models import RunItem, VerificationResult
from checklists.tasks import verification_run

from .conftest import wait_until
from .servers import hang, http_server  # noqa: F401

FAST = 15


def checklist(base: str) -> str:
    lines = ["# Batch", "", "## Checks", ""]
    lines += [f'- [ ] Fast {n} <!-- check: http url="{base}/fast" -->' for n in range(FAST)]
    lines += [f'- [ ] Slow one <!-- check: http url="{base}/hang" timeout=20 -->', "", "## Sign-Off", "", "- [ ] Tech Lead", ""]
    return "\n".join(lines)


def snapshot(run):
    return list(VerificationResult.objects.filter(run=run).order_by("pk").values_list("pk", "status", "message", "finished_at", "applied_at"))


@pytest.mark.django_db(transaction=True)
def test_fifteen_fast_checks_are_recorded_while_the_slow_one_in_their_batch_still_waits(celery_worker, http_server, make_user):  # noqa: F811
    http_server.route("/fast", 200, "ok")
    http_server.routes["/hang"] = hang(http_server)
    lead = make_user("vera", "lead", "Tech Lead")
    version = services.template_import(md.parse(checklist(http_server.url("").rstrip("/"))), actor=lead)
    environment = services.environment_get_or_create("batch", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    results = services.verification_request(run=run, actor=lead)
    slow = next(r for r in results if r.item.text == "Slow one")

    started = time.monotonic()
    verification_run.apply_async(args=[[r.pk for r in results]])  # one task carries all sixteen

    fast_done = wait_until(
        lambda: VerificationResult.objects.filter(run=run, applied_at__isnull=False).exclude(pk=slow.pk).count() == FAST, timeout=15
    )
    fast_seconds = time.monotonic() - started
    assert fast_done, snapshot(run)
    assert VerificationResult.objects.get(pk=slow.pk).status == "running"
    assert RunItem.objects.filter(run=run, state="done").count() == FAST
    # The sweep meanwhile finds nothing to write off: the slow check is within its own deadline.
    before = snapshot(run)
    assert services.verification_sweep() == 0
    assert snapshot(run) == before

    assert wait_until(lambda: VerificationResult.objects.get(pk=slow.pk).applied_at is not None, timeout=40)
    slow_seconds = time.monotonic() - started
    slow.refresh_from_db()
    assert slow.status == "failed" and "within 20 s" in slow.message, slow.message
    assert 18 <= slow_seconds <= 35 and fast_seconds < 10, (fast_seconds, slow_seconds)

    # Long after, a sweep changes no row: every verdict stands as the checks found it.
    after = snapshot(run)
    assert services.verification_sweep() == 0
    assert snapshot(run) == after
