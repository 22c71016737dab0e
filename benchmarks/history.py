"""How fast the managers' pages answer at 100 and at 10,000 runs, against the floor of a plain
`SELECT count(*)` over the same rows, in the same run.

    make bench            (or: .venv/bin/python benchmarks/history.py; about 5 minutes)

Starts from a fresh Postgres database on 127.0.0.1 (deploycheck_bench_history, dropped at the
end unless BENCH_KEEP_DB=1), migrated, with one manager. `manage.py generate_history` fills it:
first BENCH_HISTORY_SMALL (100) runs of BENCH_HISTORY_ITEMS (300) items, then more up to
BENCH_HISTORY_RUNS (10,000); after each fill the tables are VACUUM ANALYZEd, as autovacuum soon
would on a live server, and a CHECKPOINT writes out what the fill dirtied (else the background
writer competes with the timed pages). At each size, through Django's test client in this
process (the view, its queries and the template; no network, no gunicorn):

  * /history/ (newest first), /history/ filtered by a person and text and sorted by blocked
    items, /reports/, /reports/ for one project and environment, and /runs/compare of the two
    newest live runs of one template: BENCH_REPEAT (9) timed requests after three to warm up,
    the median and the slowest, and the number of queries each ran;
  * the floor: `SELECT count(*)` over the runs (what the history pages list), over the items
    (what the reports aggregate), and over the two compared runs' items, timed the same way.

Targets (the issue): each page at 10,000 runs under 300 ms, and (the aim) under 2x its
100-run time; the same number of queries at both sizes. Prints a table and writes
benchmarks/results/history.json. Exits 1 if a page misses 300 ms or its query count grows.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from common import drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DB_NAME = "deploycheck_bench_history"
SMALL = int(os.environ.get("BENCH_HISTORY_SMALL", "100"))
LARGE = int(os.environ.get("BENCH_HISTORY_RUNS", "10000"))
ITEMS = int(os.environ.get("BENCH_HISTORY_ITEMS", "300"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "9"))
TARGET_MS, AIM_RATIO = 300, 2.0


def setup_django(database_url: str) -> None:
    os.environ.update({
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "deploycheck.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-key-not-for-production"),
        "DEBUG": "0", "ALLOWED_HOSTS": "testserver", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "DEPLOYCHECK_MANIFEST_STATIC": "0", "LOG_LEVEL": "WARNING",
        "DEPLOYCHECK_PASSWORD": "bench-only-password-Xq7!",
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def timed(call) -> dict:
    for _ in range(3):
        call()
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("checklists_run", "checklists_runitem", "checklists_runsection", "checklists_verificationresult",
                      "checklists_signoff", "checklists_note", "checklists_auditevent"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        # Write out what the fill dirtied now, not while the pages are being timed.
        cursor.execute("CHECKPOINT")


def measure(client) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from checklists.models import Run

    newest = Run.objects.filter(status="completed").order_by("-started_at", "-id").first()
    before = Run.objects.filter(status="completed", template_id=newest.template_id).exclude(pk=newest.pk).order_by("-started_at", "-id").first()
    pages = {
        "history": "/history/",
        "history filtered": "/history/?person=ana&q=1&sort=-blocked",
        "reports": "/reports/",
        "reports filtered": "/reports/?project=shop&environment=production",
        "compare": f"/runs/compare?a={before.pk}&b={newest.pk}",
    }
    floors = {
        "count(*) runs": "SELECT count(*) FROM checklists_run",
        "count(*) items": "SELECT count(*) FROM checklists_runitem",
        "count(*) compared items": f"SELECT count(*) FROM checklists_runitem WHERE run_id IN ({before.pk}, {newest.pk})",
    }
    out = {"runs": Run.objects.count(), "pages": {}, "floors": {}}
    for name, path in pages.items():
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        out["pages"][name] = {"path": path, "queries": len(captured), **timed(lambda p=path: client.get(p))}
    with connection.cursor() as cursor:
        for name, sql in floors.items():
            out["floors"][name] = timed(lambda s=sql: (cursor.execute(s), cursor.fetchone()))
    return out


FLOOR_OF = {"history": "count(*) runs", "history filtered": "count(*) runs", "reports": "count(*) items",
            "reports filtered": "count(*) items", "compare": "count(*) compared items"}


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    database_url = fresh_database(DB_NAME)
    try:
        setup_django(database_url)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        call_command("grant", "bench-manager", "manager", "--create", stdout=open(os.devnull, "w"))
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench-manager"))

        generated = {}
        sizes = {}
        for target, seed in ((SMALL, 1), (LARGE, 2)):
            from checklists.models import Run

            missing = target - Run.objects.count()
            start = time.perf_counter()
            call_command("generate_history", runs=missing, items=ITEMS, seed=seed, stdout=open(os.devnull, "w"))
            generated[target] = {"runs": missing, "seconds": round(time.perf_counter() - start, 1)}
            vacuum()
            sizes[target] = measure(client)
            print(f"{target} runs: generated {missing} in {generated[target]['seconds']} s; measured", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_KEEP_DB") != "1":
            drop_database(DB_NAME)

    small, large = sizes[SMALL], sizes[LARGE]
    rows, ok = [], True
    print(f"\n{'page':<18} {'queries':>9} {SMALL:>7} runs {LARGE:>7} runs  ratio  floor at {LARGE}")
    for name, page in large["pages"].items():
        before = small["pages"][name]
        ratio = round(page["median_ms"] / before["median_ms"], 2)
        floor = large["floors"][FLOOR_OF[name]]["median_ms"]
        met = page["median_ms"] <= TARGET_MS and page["queries"] == before["queries"]
        ok = ok and met
        rows.append({
            "page": name, "path": page["path"], "queries_small": before["queries"], "queries_large": page["queries"],
            "small_ms": before["median_ms"], "large_ms": page["median_ms"], "large_max_ms": page["max_ms"], "ratio": ratio,
            "floor": FLOOR_OF[name], "floor_ms": floor, "floor_small_ms": small["floors"][FLOOR_OF[name]]["median_ms"],
            "under_target": page["median_ms"] <= TARGET_MS, "within_aim": ratio <= AIM_RATIO,
        })
        print(f"{name:<18} {before['queries']:>4}/{page['queries']:<4} {before['median_ms']:>7} ms {page['median_ms']:>7} ms  {ratio:>5}  {floor} ms"
              f"{'' if met else '  MISSED'}")
    result = {
        "items_per_run": ITEMS, "repeat": REPEAT, "small": SMALL, "large": LARGE, "generated": generated,
        "targets": {"max_ms": TARGET_MS, "aim_ratio": AIM_RATIO}, "rows": rows,
        "floors": {str(SMALL): small["floors"], str(LARGE): large["floors"]},
    }
    (RESULTS / "history.json").write_text(json.dumps(result, indent=2))
    print("wrote benchmarks/results/history.json")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
