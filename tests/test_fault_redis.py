"""Launch day, Redis goes away and comes back. While it is gone the pages and ticking answer,
Verify says the queue is down and records nothing, /readyz says 503; when it is back, Verify
works again with no restart of the app or of the worker.

The Redis here is the test's own (`throwaway_redis`), and so is the worker.
"""

from __future__ import annotations

import pytest

from checklists import markdown as md
from checklists import services
from checklists.models import VerificationResult

from .conftest import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

CHECKLIST = """\
# Broker weather

## Checks

- [ ] Postgres answers <!-- check: tcp host=127.0.0.1 port=5432 probe=postgres -->
- [ ] Manual step
"""


def test_redis_gone_then_back_needs_no_restart(own_worker, throwaway_redis, broker_at, make_user, api_as, client):
    lead = make_user("lena", "lead")
    version = services.template_import(md.parse(CHECKLIST), actor=lead)
    run, _ = services.run_start(version=version, environment=services.environment_get_or_create("shop", "prod"), version_label="1", actor=lead)
    check, manual = run.items.order_by("position")
    broker_at(throwaway_redis.url)
    own_worker.start(REDIS_URL=throwaway_redis.url)
    api = api_as(lead)
    results = VerificationResult.objects.filter(run=run)

    assert api.post(f"/api/v1/runs/{run.pk}/verify", {}).status_code == 202
    assert wait_until(lambda: results.filter(applied_at__isnull=False).count() == 1, timeout=30)

    throwaway_redis.stop()
    refused = api.post(f"/api/v1/runs/{run.pk}/verify", {})
    ticked = api.post(f"/api/v1/runs/{run.pk}/items/{manual.pk}", {"state": "done"})
    client.force_login(lead)
    page = client.get(run.get_absolute_url())

    assert refused.status_code == 503 and "queue is unavailable" in refused.json_body["error"]
    assert results.count() == 1  # nothing recorded for the refused Verify
    assert ticked.status_code == 200 and page.status_code == 200
    assert client.get("/readyz").status_code == 503

    throwaway_redis.start()  # back, on the same address; nobody restarts anything
    assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=15)
    again = api.post(f"/api/v1/runs/{run.pk}/verify", {})

    assert again.status_code == 202
    # The worker reconnects by itself (Celery retries its broker) and runs the check.
    assert wait_until(lambda: results.filter(applied_at__isnull=False).count() == 2, timeout=60)
    assert set(results.values_list("status", flat=True)) == {"passed"}
    assert own_worker.process.poll() is None
