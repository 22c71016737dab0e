"""A team verifies a run: checks go through Redis to a real Celery worker and come back."""

import re
import time

import pytest
from pytest_httpserver import HTTPServer

from checklists import markdown as md
from checklists import services
from checklists.models import AuditEvent, RunItem, VerificationResult

from .conftest import wait_until

CHECKLIST = """\
# Verified Launch

## Checks

- [ ] Health answers <!-- check: http url="{{ base_url }}/health" contains=ok -->
- [ ] Status page answers <!-- check: http url="{{ base_url }}/status" -->
- [ ] Redis answers <!-- check: tcp host=127.0.0.1 port=6379 probe=redis -->
- [ ] Manual step

## Sign-Off

- [ ] Tech Lead
"""


@pytest.fixture
def web(httpserver: HTTPServer):
    httpserver.expect_request("/health").respond_with_data("all ok")
    httpserver.expect_request("/status").respond_with_data("down", status=500)
    return httpserver


@pytest.fixture
def verified_run(make_user, web):
    lead = make_user("vera", "lead", "Tech Lead")
    version = services.template_import(md.parse(CHECKLIST), actor=lead)
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(
        version=version, environment=environment, version_label="1.0", actor=lead,
        variables={"base_url": web.url_for("").rstrip("/")},
    )
    return run, lead


def items_by_text(run):
    return {i.text: i for i in RunItem.objects.filter(run=run)}


def finished(run, count):
    return VerificationResult.objects.filter(run=run, applied_at__isnull=False).count() >= count


@pytest.mark.django_db(transaction=True)
def test_verify_all_runs_each_check_on_the_worker_and_ticks_the_passing_ones(celery_worker, verified_run, api_as):
    run, lead = verified_run

    answer = api_as(lead).post(f"/api/v1/runs/{run.pk}/verify", {})

    assert answer.status_code == 202
    assert answer.json_body["queued"] == 3
    assert wait_until(lambda: finished(run, 3), timeout=30)
    items = items_by_text(run)
    assert items["Health answers"].state == "done"
    assert items["Health answers"].changed_by_name == "verification"
    assert items["Redis answers"].state == "done"
    assert items["Status page answers"].state == "todo"
    failed = VerificationResult.objects.get(item=items["Status page answers"])
    assert failed.status == "failed" and "500" in failed.message
    view = api_as(lead).get(f"/api/v1/runs/{run.pk}").json_body
    status_item = next(i for i in view["items"] if i["title"] == "Status page answers")
    assert status_item["verification"]["status"] == "failed"
    assert AuditEvent.objects.filter(run=run, action="verification.result", actor_name="verification").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_failed_check_keeps_the_gate_shut_even_when_ticked_by_hand(celery_worker, verified_run, api_as):
    run, lead = verified_run
    client = api_as(lead)
    client.post(f"/api/v1/runs/{run.pk}/verify", {})
    assert wait_until(lambda: finished(run, 3), timeout=30)
    for item in RunItem.objects.filter(run=run).exclude(state="done"):
        client.post(f"/api/v1/runs/{run.pk}/items/{item.pk}", {"state": "done"})

    answer = client.post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})

    assert answer.status_code == 409
    assert [i["title"] for i in answer.json_body["open"]] == ["Status page answers"]


@pytest.mark.django_db(transaction=True)
def test_verifying_one_item_shows_its_result_on_the_page(celery_worker, verified_run, client):
    run, lead = verified_run
    client.force_login(lead)
    item = items_by_text(run)["Health answers"]

    answer = client.post(f"/runs/{run.pk}/verify", {"item": item.pk}, headers={"HX-Request": "true"})

    assert answer.status_code == 200
    # The worker may already have answered by the time the item is drawn.
    assert re.search(r"http: (queued|running|passed)", answer.content.decode())
    assert wait_until(lambda: finished(run, 1), timeout=30)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "http: passed" in page


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_task_does_not_record_twice(verified_run, api_as, broker_at, throwaway_redis):
    from checklists.tasks import verification_run

    run, lead = verified_run
    broker_at(throwaway_redis.url)  # no worker listens here: the test runs the task itself
    api_as(lead).post(f"/api/v1/runs/{run.pk}/verify", {"items": [items_by_text(run)["Health answers"].pk]})
    result = VerificationResult.objects.get(run=run)

    verification_run(result.pk)
    verification_run(result.pk)

    result.refresh_from_db()
    assert result.status == "passed"
    assert AuditEvent.objects.filter(run=run, action="verification.result").count() == 1


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_verify_says_so_records_nothing_and_ticking_still_works(verified_run, api_as, broker_at, throwaway_redis, client):
    run, lead = verified_run
    broker_at(throwaway_redis.url)
    throwaway_redis.stop()
    items = items_by_text(run)
    api = api_as(lead)

    started = time.monotonic()
    refused = api.post(f"/api/v1/runs/{run.pk}/verify", {})
    took = time.monotonic() - started
    ticked = api.post(f"/api/v1/runs/{run.pk}/items/{items['Manual step'].pk}", {"state": "done"})
    client.force_login(lead)
    page = client.post(f"/runs/{run.pk}/verify", {}, headers={"HX-Request": "true"})

    assert refused.status_code == 503
    assert "queue is unavailable" in refused.json_body["error"]
    assert took < 10
    assert VerificationResult.objects.filter(run=run).count() == 0
    assert ticked.status_code == 200
    assert page.status_code == 503 and "queue is unavailable" in page.content.decode()
    assert client.get("/readyz").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_a_lost_check_runs_once_more_and_a_second_loss_is_an_error(verified_run, api_as, broker_at, throwaway_redis):
    from datetime import timedelta

    from django.utils import timezone

    from checklists.tasks import verification_sweep

    run, lead = verified_run
    broker_at(throwaway_redis.url)  # no worker listens here: every check is lost
    api_as(lead).post(f"/api/v1/runs/{run.pk}/verify", {})
    VerificationResult.objects.filter(run=run).update(deadline_at=timezone.now() - timedelta(seconds=1))

    assert verification_sweep() == 3
    again = VerificationResult.objects.filter(run=run)
    assert {(r.status, r.attempts) for r in again} == {("queued", 2)}
    assert all(r.deadline_at > timezone.now() for r in again)
    assert throwaway_redis.queued() >= 2  # published again (in two tasks: a first lot and this one)

    VerificationResult.objects.filter(run=run).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert verification_sweep() == 3

    statuses = set(VerificationResult.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == {"error"}
    assert "lost twice" in VerificationResult.objects.filter(run=run).first().message


@pytest.mark.django_db(transaction=True)
def test_an_address_the_operator_denied_is_refused_by_the_worker(celery_worker, worker_world, make_user, api_as):
    lead = make_user("dora", "lead")
    text = f"# Deny\n\n- [ ] Internal answers <!-- check: tcp host={worker_world.DENIED} port=6379 -->\n"
    version = services.template_import(md.parse(text), actor=lead)
    environment = services.environment_get_or_create("deny", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)

    api_as(lead).post(f"/api/v1/runs/{run.pk}/verify", {})

    assert wait_until(lambda: finished(run, 1), timeout=30)
    result = VerificationResult.objects.get(run=run)
    assert result.status == "error" and "denied" in result.message
    assert run.items.get().state == "todo"
