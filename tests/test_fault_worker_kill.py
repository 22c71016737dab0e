"""Launch day, a worker dies: `kill -9` in the middle of 100 one-second checks, then the
operator (or the orchestrator) starts it again. Every check still reaches its real verdict;
none is written off, none left queued or running, and none that had finished runs again.

The worker here is the test's own, on a queue of its own, so killing it touches nothing else.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from checklists import markdown as md
from checklists import services
from checklists.models import VerificationResult

from .conftest import wait_until
from .servers import http_server, slow  # noqa: F401

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]
CHECKS = 100


def test_a_worker_killed_mid_batch_and_restarted_leaves_no_check_behind(own_worker, http_server, make_user):  # noqa: F811
    for n in range(CHECKS):
        http_server.routes[f"/slow/{n}"] = slow(http_server, 1.0, "ok")
    lines = ["# Many checks", "", "## Checks", ""]
    lines += [f'- [ ] Service {n} answers <!-- check: http url="{http_server.url("/slow/")}{n}" -->' for n in range(CHECKS)]
    lead = make_user("lena", "lead")
    version = services.template_import(md.parse("\n".join(lines) + "\n"), actor=lead)
    environment = services.environment_get_or_create("fleet", "production")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    own_worker.start()

    services.verification_enqueue(run=run, actor=lead)
    results = VerificationResult.objects.filter(run=run)
    # Kill it when some checks are done and others are half-way through their second.
    assert wait_until(lambda: results.filter(status="passed").count() >= 30 and results.filter(status="running").count() >= 20, timeout=30, interval=0.02)
    own_worker.kill()
    finished_before = set(results.exclude(status__in=["queued", "running"]).values_list("pk", flat=True))
    lost = set(results.filter(status__in=["queued", "running"]).values_list("pk", flat=True))
    assert lost and finished_before, "the kill should fall between finished and running checks"

    restarted = time.monotonic()
    own_worker.start()
    assert wait_until(lambda: not results.filter(applied_at__isnull=True).exists(), timeout=90)
    took = time.monotonic() - restarted
    print(f"\n{len(lost)} lost checks reached their verdicts {took:.1f} s after the worker restarted")

    assert results.count() == CHECKS  # one result per check: nothing queued twice
    assert set(results.values_list("status", flat=True)) == {"passed"}
    assert set(results.filter(pk__in=lost).values_list("attempts", flat=True)) == {2}
    assert set(results.filter(pk__in=finished_before).values_list("attempts", flat=True)) <= {1}
    assert run.items.filter(state="done").count() == CHECKS
    hits = Counter(request["path"] for request in http_server.seen)
    paths = dict(results.values_list("pk", "item__check_params__url"))
    for pk in finished_before:
        assert hits[paths[pk].removeprefix(http_server.url(""))] == 1, "a finished check ran again"
    assert max(hits.values()) <= 2


def test_a_restarted_worker_takes_back_only_what_its_own_node_was_running(run, member, broker_at, throwaway_redis):
    broker_at(throwaway_redis.url)  # nobody consumes here: the test looks at what was queued
    first, second = services.verification_request(run=run, actor=member)[:2]
    services.verification_claim([first.pk], worker="celery@web-1")
    services.verification_claim([second.pk], worker="celery@web-2")

    assert services.verification_recover(worker="celery@web-1") == 1

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts, first.claimed_by) == ("queued", 2, "")
    assert (second.status, second.attempts) == ("running", 1)
    assert throwaway_redis.queued() == 1


def test_two_workers_on_one_queue_run_each_of_300_checks_once(own_worker, http_server, make_user):  # noqa: F811
    http_server.route("/fast", 200, "ok")
    lines = ["# Fleet", "", "## Checks", ""]
    lines += [f'- [ ] Node {n} answers <!-- check: http url="{http_server.url("/fast")}?node={n}" -->' for n in range(300)]
    lead = make_user("lena", "lead")
    version = services.template_import(md.parse("\n".join(lines) + "\n"), actor=lead)
    run, _ = services.run_start(version=version, environment=services.environment_get_or_create("fleet", "prod"), version_label="1", actor=lead)
    second = own_worker.sibling(f"second-{own_worker.queue}@localhost")
    own_worker.start()
    second.start()

    services.verification_enqueue(run=run, actor=lead)
    results = VerificationResult.objects.filter(run=run)
    assert wait_until(lambda: not results.filter(applied_at__isnull=True).exists(), timeout=90)

    assert set(results.values_list("status", flat=True)) == {"passed"}
    hits = Counter(request["path"] for request in http_server.seen)
    assert len(hits) == 300 and set(hits.values()) == {1}, "a check ran twice"
    # Both replicas took a share.
    assert set(results.values_list("claimed_by", flat=True)) == {own_worker.node, second.node}
