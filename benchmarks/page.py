"""What the run page costs on the server: a 300-item launch opened, polled idle, polled busy.

    make bench            (or: .venv/bin/python benchmarks/page.py; about 20 s)

Starts a fresh Postgres database of its own (deploycheck_bench_page, dropped at the end) and
drives the app in this process through Django's test client: no network in the figures, only
what the server does per request (middleware, session, permissions, queries, rendering).
Set up through the API as a pipeline would: `grant`/`create_api_token`, then
`POST /api/v1/templates/import` of our users' own biggest seed (shared/seeds, 298 items with
bodies, code blocks and checks) and of a 30-item cut of it, and `POST /api/v1/runs`.
A lead ("bench", with a session) reads the pages; ticks come from the API.

Measures, each the median of BENCH_PAGE_REPEATS (20) requests after two warm-ups, CPU time of
this process (time.process_time: what the request costs, whatever else the machine runs) and
wall time:

  * the run page, GET /runs/{id}/: queries on the 30-item and the 298-item run (they must be
    the same number), CPU and wall time, HTML size; once with the row cache cold (the first
    page of a process, or after every row changed) and once warm (the next viewers);
  * the poll with nothing new, GET /runs/{id}/poll?rev=N: the 204 an open page gets every
    second: queries and time;
  * the poll after 25 ticks by others: the changed rows, progress and feed: queries and time;
  * the floor, in the same run: the run's items read straight from Postgres (one SELECT of
    the same rows, psycopg, no Django), so the figures can be read as multiples of it.

Targets: the same number of queries on 30 and 298 items (the standard: a list costs a constant
number of queries); the idle poll well under a millisecond-scale budget is what keeps forty open
pages cheap, reported against the floor. Writes benchmarks/results/page.json. Exits 1 if the
query counts differ between the two sizes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "deploycheck_bench_page"
REPEATS = int(os.environ.get("BENCH_PAGE_REPEATS", "20"))
SEED = ROOT.parent / "shared" / "seeds" / "saas-chat-production.md"
RESULTS = ROOT / "benchmarks" / "results"


def cut(markdown: str, items: int) -> str:
    """The seed up to its `items`-th checkbox: the same kind of content, a tenth of the size."""
    out, seen = [], 0
    for line in markdown.splitlines(keepends=True):
        if line.lstrip().startswith("- [ ]"):
            seen += 1
            if seen > items:
                break
        out.append(line)
    return "".join(out)


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    url = fresh_database(DB_NAME)
    env = {"DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": "benchmark-only-key-not-for-production",
           "ALLOWED_HOSTS": "testserver,127.0.0.1", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
           "CSRF_COOKIE_SECURE": "0", "DEPLOYCHECK_MANIFEST_STATIC": "0", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "deploycheck.settings", "DEPLOYCHECK_PASSWORD": "bench-only-password-Xq7!"}
    os.environ.update(env)
    manage = [sys.executable, "manage.py"]
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        subprocess.run([*manage, "grant", "bench", "lead", "member", "--create"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        token = subprocess.run([*manage, "create_api_token", "bench"], cwd=ROOT, check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1].strip()
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        report = measure(token)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)
    (RESULTS / "page.json").write_text(json.dumps(report, indent=2) + "\n")
    show(report)
    return 0 if report["constant_queries"] else 1


def measure(token: str) -> dict:
    import psycopg
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def call(method: str, path: str, expect: int, body: dict) -> dict:
        response = getattr(api, method)(path, data=body, content_type="application/json")
        if response.status_code != expect:
            raise SystemExit(f"{method.upper()} {path}: {response.status_code} {response.content[:300]!r}")
        return response.json()

    seed = SEED.read_text()
    runs = {}
    for label, markdown in (("30", cut(seed, 30)), ("full", seed)):
        template = call("post", "/api/v1/templates/import", 201, {"markdown": markdown, "name": f"Bench page {label}"})
        run = call("post", "/api/v1/runs", 201, {"template": template["id"], "project": "bench", "environment": f"page-{label}",
                                                 "version": "1", "variables": {}})
        detail = api.get(f"/api/v1/runs/{run['id']}").json()
        runs[label] = (run["id"], [item["id"] for item in detail["items"]])

    reader = Client()
    reader.force_login(get_user_model().objects.get(username="bench"))

    def timed(path: str, expect: int, *, before=None) -> dict:
        cpu, wall, size = [], [], 0
        for i in range(REPEATS + 2):
            if before:
                before()
            c0, w0 = time.process_time(), time.perf_counter()
            response = reader.get(path, HTTP_HX_REQUEST="true" if "/poll" in path else None)
            c1, w1 = time.process_time(), time.perf_counter()
            if response.status_code != expect:
                raise SystemExit(f"GET {path}: {response.status_code}")
            if i >= 2:
                cpu.append((c1 - c0) * 1000)
                wall.append((w1 - w0) * 1000)
                size = len(response.content)
        if before:
            before()
        with CaptureQueriesContext(connection) as queries:
            reader.get(path, HTTP_HX_REQUEST="true" if "/poll" in path else None)
        return {"queries": len(queries), "cpu_ms": round(statistics.median(cpu), 2),
                "wall_ms": round(statistics.median(wall), 2), "bytes": size}

    def _revision(run_id: int) -> int:
        from checklists.models import Run

        return Run.objects.values_list("revision", flat=True).get(pk=run_id)

    out: dict = {"seed": SEED.name, "repeats": REPEATS}
    for label, (run_id, items) in runs.items():
        fragments = caches["fragments"]
        out[f"page_{label}"] = {
            "items": len(items),
            "cold": timed(f"/runs/{run_id}/", 200, before=fragments.clear),
            "warm": timed(f"/runs/{run_id}/", 200),
        }
        rev = _revision(run_id)
        out[f"poll_idle_{label}"] = timed(f"/runs/{run_id}/poll?rev={rev}&status=in_progress", 204)

    # Busy: 25 ticks by someone else since the page's revision.
    run_id, items = runs["full"]
    rev = _revision(run_id)
    for item in items[:25]:
        call("post", f"/api/v1/runs/{run_id}/items/{item}", 200, {"state": "done"})
    out["poll_busy_full"] = timed(f"/runs/{run_id}/poll?rev={rev}&status=in_progress", 200)
    out["poll_busy_full"]["changed_items"] = 25

    # The floor: the same rows, straight from Postgres.
    db = settings.DATABASES["default"]
    dsn = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    floor = []
    with psycopg.connect(dsn) as conn:
        for i in range(REPEATS + 2):
            w0 = time.perf_counter()
            rows = conn.execute("SELECT * FROM checklists_runitem WHERE run_id = %s ORDER BY position", (run_id,)).fetchall()
            w1 = time.perf_counter()
            if i >= 2:
                floor.append((w1 - w0) * 1000)
    out["floor_select_items_ms"] = round(statistics.median(floor), 2)
    out["floor_rows"] = len(rows)
    out["constant_queries"] = (
        out["page_30"]["cold"]["queries"] == out["page_full"]["cold"]["queries"]
        and out["page_30"]["warm"]["queries"] == out["page_full"]["warm"]["queries"]
        and out["poll_idle_30"]["queries"] == out["poll_idle_full"]["queries"]
    )
    return out


def show(r: dict) -> None:
    floor = r["floor_select_items_ms"]
    print(f"run page of {r['seed']} ({r['page_full']['items']} items) and a 30-item cut; medians of {r['repeats']}")
    print(f"{'measure':<34}{'queries':>8}{'CPU ms':>9}{'wall ms':>9}{'x floor':>9}{'KB':>8}")
    for key, label in (("page_30", "page, 30 items"), ("page_full", f"page, {r['page_full']['items']} items")):
        for temp in ("cold", "warm"):
            m = r[key][temp]
            print(f"{label + ', rows ' + temp:<34}{m['queries']:>8}{m['cpu_ms']:>9}{m['wall_ms']:>9}"
                  f"{m['wall_ms'] / floor:>9.1f}{m['bytes'] / 1024:>8.0f}")
    for key, label in (("poll_idle_30", "poll, nothing new (204), 30"), ("poll_idle_full", "poll, nothing new (204), full"),
                       ("poll_busy_full", "poll after 25 ticks, full")):
        m = r[key]
        print(f"{label:<34}{m['queries']:>8}{m['cpu_ms']:>9}{m['wall_ms']:>9}{m['wall_ms'] / floor:>9.1f}{m['bytes'] / 1024:>8.1f}")
    print(f"{'floor: SELECT the run items':<34}{1:>8}{'':>9}{floor:>9}{1.0:>9.1f}   ({r['floor_rows']} rows)")
    print(f"queries the same on 30 and {r['page_full']['items']} items: {'yes' if r['constant_queries'] else 'NO'}")


if __name__ == "__main__":
    raise SystemExit(main())
