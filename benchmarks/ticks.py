"""How much a tick costs through the real stack, against the floor of the same writes in Postgres.

    make bench            (or: .venv/bin/python benchmarks/ticks.py; about 45 s)

A tick is `POST /api/v1/runs/{id}/items/{item}` with a bearer token, always a real change (the
item alternates between `done` and `todo`). Starts, on 127.0.0.1 only: a fresh Postgres database
(deploycheck_bench_ticks, dropped at the end) and gunicorn with the production command of
docker-compose.yml (`gunicorn -c gunicorn.conf.py deploycheck.wsgi`; BENCH_GUNICORN_ARGS
overrides, e.g. "--workers 3 --worker-class sync" to compare). Redis from REDIS_URL (default
redis://127.0.0.1:6379/0); no Celery worker is needed. Setup goes through the management
commands (`grant bench lead member --create`, `create_api_token bench`) and the API
(`POST /api/v1/templates/import`: 30 and 300 items in sections of 10; `POST /api/v1/runs`).
Besides the runs it measures, the database holds BENCH_BALLAST_RUNS (12) other 300-item runs,
so that its tables are not so small that scanning one whole is the cheapest plan, and the
tables are ANALYZEd once after setup, as autovacuum soon would on a live server (on tables never
analysed, Postgres 15 finds an item by its key through the (run, ...) index, reading the whole
run three times a tick; a local server with autovacuum off, as here, never gets out of that).

Measures, in one run:

  * rows read per tick, on a 30-item and on a 300-item run: the sum of seq_tup_read +
    idx_tup_fetch over pg_stat_user_tables around BENCH_TICKS (40) sequential ticks, with the
    busiest tables. A backend keeps its counters to itself for up to ~10 s when idle, so before
    each reading the app's connections are ended (pg_terminate_backend: a backend flushes its
    counters as it exits; Django's health check reconnects on the next request). The figure
    held to the target is taken with enable_seqscan off (set on the database for that phase
    only): it counts the rows a tick needs, not small tables the planner rightly scans whole;
    the planner's own choice is measured and printed beside it.
  * ticks/s through gunicorn: BENCH_CLIENTS (24) threads for BENCH_SECONDS (10), each with its
    own requests.Session ticking its own item of a fresh 300-item run in a loop, and each also
    polling the run page once a second (BENCH_POLL_SECONDS; 0 turns polling off) as the page
    does: the poller's own address (`GET /runs/{id}/poll?rev=N&status=...&gate=G`, read from
    the run page and then from each 200 answer's poller, as htmx does) with a session cookie
    (one login through /accounts/login/, its cookie shared by the threads). HTTP 200 ticks count;
    anything else, or an exception, is an error. CPU per tick of gunicorn and of its Postgres
    backends (polls included) is read from /proc.
  * the floor: the same number of threads for the same time, each with its own psycopg
    connection (autocommit off), a tick being the writes the kernel makes for one, committed:
    the run's row locked (SELECT ... FOR UPDATE, whose revision gives the next one), the item
    UPDATEd (state, changed_*, holds_gate, revision), its sections' and the run's counters
    moved, one audit event INSERTed. What the app adds on top (HTTP, auth, the rule, the answer,
    the polls) is what the ratio measures.
  * nothing lost: after the load, every item holds the last state the app answered 200 for,
    every 200 is one audit event, and the run's done counter equals its done items.

Targets (the issue): ticks/s through gunicorn at least 0.10 of the floor (aim 0.33); a tick
reading tens of rows, not hundreds. Prints a table and writes benchmarks/results/ticks.json
(gunicorn's log: benchmarks/results/gunicorn-ticks.log). Exits 1 if the ratio is under 0.10.
BENCH_KEEP_DB=1 keeps the database afterwards, to look at plans (drop it by hand).
"""

from __future__ import annotations

import json
from html import unescape
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests
from common import drop_database, free_port, fresh_database

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DB_NAME = "deploycheck_bench_ticks"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "24"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
TICKS = int(os.environ.get("BENCH_TICKS", "40"))
BALLAST = int(os.environ.get("BENCH_BALLAST_RUNS", "12"))
POLL_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "1"))  # 0: no polling (to see what polls cost)
GUNICORN_ARGS = shlex.split(os.environ.get("BENCH_GUNICORN_ARGS", "-c gunicorn.conf.py"))
PASSWORD = "bench-only-password-Xq7!"
RESULTS = ROOT / "benchmarks" / "results"
TARGET_RATIO, AIM_RATIO, TARGET_ROWS = 0.10, 0.33, 100








def checklist(name: str, count: int) -> str:
    parts = [f"# {name}\n\nTicks benchmark.\n"]
    for i in range(count):
        if i % 10 == 0:
            parts.append(f"\n## Section {i // 10 + 1}\n\n")
        parts.append(f"- [ ] Item {i + 1}: check the `thing` number {i + 1}\n")
    return "".join(parts)


def poll_url(html: str) -> str | None:
    """The next poll's address, as htmx reads it from the poller the page (or a poll) sent:
    the revision seen, the run's status and the count of open items the page shows."""
    found = re.search(r'<div id="poller" hx-get="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU time of processes, from /proc."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def peak_rss_mb(pid: int) -> float | None:
    """The most memory the process has held (VmHWM), in MB."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, found)]


class Stats:
    """Rows read in the benchmark database, from pg_stat_user_tables, flushed on demand."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)

    def flush_others(self) -> None:
        """End every other client backend on the database: each flushes its counters as it exits."""
        self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()[0]
            if not left:
                break
            time.sleep(0.05)
        time.sleep(0.2)

    def backends(self) -> list[int]:
        return [pid for (pid,) in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'").fetchall()]

    def read(self) -> dict[str, int]:
        self.flush_others()
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = self.conn.execute(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables"
        ).fetchall()
        return {name: int(n) for name, n in rows}

    @staticmethod
    def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        out = {name: after[name] - before.get(name, 0) for name in after}
        return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    database_url = fresh_database(DB_NAME)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
           "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-key-not-for-production"), "DEBUG": "0",
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
           "CSRF_COOKIE_SECURE": "0", "DEPLOYCHECK_MANIFEST_STATIC": "0", "DEPLOYCHECK_PASSWORD": PASSWORD,
           "LOG_LEVEL": "WARNING"}
    manage = [sys.executable, "manage.py"]
    gunicorn = None
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "grant", "bench", "lead", "member", "--create"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        out = subprocess.run([*manage, "create_api_token", "bench"], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        token = out.strip().splitlines()[-1].strip()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [str(VENV_BIN / "gunicorn"), "deploycheck.wsgi", "-b", f"127.0.0.1:{port}", *GUNICORN_ARGS]
        # gunicorn 25+ opens a control socket at a fixed path in $HOME; a benchmark needs none.
        if "--no-control-socket" in subprocess.run([command[0], "--help"], capture_output=True, text=True).stdout:
            command.append("--no-control-socket")
        log = open(RESULTS / "gunicorn-ticks.log", "w")
        gunicorn = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if gunicorn.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start; see benchmarks/results/gunicorn-ticks.log")
            time.sleep(0.2)

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"

        def call(method: str, path: str, expect: int, **kwargs):
            response = api.request(method, f"{base}{path}", timeout=60, **kwargs)
            if response.status_code != expect:
                raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return response.json()

        def new_run(template_id: int, environment: str) -> tuple[int, list[int]]:
            run = call("POST", "/api/v1/runs", 201, json={"template": template_id, "project": "bench",
                                                          "environment": environment, "version": "1", "variables": {}})
            detail = call("GET", f"/api/v1/runs/{run['id']}", 200)
            return run["id"], [item["id"] for item in detail["items"]]

        templates = {n: call("POST", "/api/v1/templates/import", 201,
                             json={"markdown": checklist(f"Bench ticks {n}", n)})["id"] for n in (30, 300)}

        runs = {name: new_run(templates[size], name) for name, size in
                (("rows-30", 30), ("rows-300", 300), ("throughput", 300), ("floor", 300))}
        # Other runs, so that tables are not so small that reading one whole is the best plan.
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda i: new_run(templates[300], f"ballast-{i}"), range(BALLAST)))

        # --- Rows read per tick --------------------------------------------------------------
        stats = Stats(database_url)
        # Plans on never-analysed tables are not the ones a live server runs: analyse once, as
        # autovacuum would soon after (see the docstring).
        autovacuum = stats.conn.execute("SHOW autovacuum").fetchone()[0]
        stats.conn.execute("ANALYZE")

        ticked = {30: 0, 300: 0}

        def rows_per_tick(size: int, index_plans: bool) -> dict:
            run_id, items = runs[f"rows-{size}"]
            first, ticked[size] = ticked[size], ticked[size] + TICKS
            plan = [(items[i % len(items)], "done" if (i // len(items)) % 2 == 0 else "todo")
                    for i in range(first, first + TICKS)]
            setting = "SET enable_seqscan = off" if index_plans else "RESET enable_seqscan"
            stats.conn.execute(f"ALTER DATABASE {DB_NAME} {setting}")  # new connections; read() ends the old ones
            before = stats.read()
            started = time.monotonic()
            for item, state in plan:
                call("POST", f"/api/v1/runs/{run_id}/items/{item}", 200, json={"state": state})
            elapsed = time.monotonic() - started
            tables = Stats.diff(before, stats.read())
            total = sum(tables.values())
            return {"items": size, "index_plans": index_plans, "ticks": TICKS, "rows_read": total,
                    "rows_per_tick": round(total / TICKS, 1),
                    "sequential_ms_per_tick": round(elapsed * 1000 / TICKS, 1),
                    "per_table_per_tick": {k: round(v / TICKS, 1) for k, v in tables.items()}}

        rows = [rows_per_tick(size, index_plans) for index_plans in (True, False) for size in (30, 300)]
        stats.conn.execute(f"ALTER DATABASE {DB_NAME} RESET enable_seqscan")
        stats.flush_others()
        print("rows read per tick: " + ", ".join(f"{r['items']} items {r['rows_per_tick']}"
                                                 f"{'' if r['index_plans'] else ' (planner choice)'}" for r in rows), flush=True)

        # --- Throughput through gunicorn ----------------------------------------------------------
        run_id, items = runs["throughput"]
        if len(items) < CLIENTS:
            raise SystemExit(f"need {CLIENTS} items, the run has {len(items)}")
        browser = requests.Session()
        page = browser.get(f"{base}/accounts/login/", timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not csrf:
            raise SystemExit("no CSRF token in the login form")
        login = browser.post(f"{base}/accounts/login/", timeout=30, allow_redirects=False,
                             data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": csrf.group(1)},
                             headers={"Referer": f"{base}/accounts/login/"})
        if login.status_code != 302 or "sessionid" not in browser.cookies:
            raise SystemExit(f"login failed: {login.status_code}")
        run_page = browser.get(f"{base}/runs/{run_id}/", timeout=30)
        start_poll = poll_url(run_page.text)
        if run_page.status_code != 200 or not start_poll:
            raise SystemExit(f"run page: {run_page.status_code}, no poller")
        session_cookie = browser.cookies["sessionid"]

        lock = threading.Lock()
        counts = {"ticks": 0, "tick_errors": 0, "polls": 0, "polls_200": 0, "poll_errors": 0, "acked": 0}
        acked_state: dict[int, str] = {}  # item -> the last state the app answered 200 for
        latencies: list[float] = []
        poll_latencies: list[float] = []
        errors: dict[str, int] = {}
        barrier = threading.Barrier(CLIENTS + 1, timeout=120)
        window: dict[str, float] = {}

        def client(item: int) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            poller = requests.Session()
            poller.cookies.set("sessionid", session_cookie, domain="127.0.0.1")
            state, poll, last_acked = "done", start_poll, None
            local = {k: 0 for k in counts}
            lat, plat, errs = [], [], {}
            barrier.wait()
            end = window["end"]
            next_poll = time.monotonic() + (item % 10) / 10  # the pages' timers are not in step
            while (now := time.monotonic()) < end:
                if POLL_SECONDS and now >= next_poll:
                    next_poll += POLL_SECONDS
                    t0 = time.monotonic()
                    try:
                        r = poller.get(f"{base}{poll}", headers={"HX-Request": "true"}, timeout=30)
                        plat.append(time.monotonic() - t0)
                        local["polls"] += 1
                        if r.status_code == 200:
                            local["polls_200"] += 1
                            poll = poll_url(r.text) or poll
                        elif r.status_code != 204:
                            local["poll_errors"] += 1
                            errs[f"poll {r.status_code}"] = errs.get(f"poll {r.status_code}", 0) + 1
                    except requests.RequestException as exc:
                        local["poll_errors"] += 1
                        errs[f"poll {type(exc).__name__}"] = errs.get(f"poll {type(exc).__name__}", 0) + 1
                    continue
                t0 = time.monotonic()
                try:
                    r = session.post(f"{base}/api/v1/runs/{run_id}/items/{item}", json={"state": state}, timeout=30)
                    if r.status_code == 200:
                        # Every answered tick must be in the database, counted or not.
                        local["acked"] += 1
                        last_acked = state
                        if time.monotonic() <= end:
                            local["ticks"] += 1
                            lat.append(time.monotonic() - t0)
                        state = "todo" if state == "done" else "done"
                    elif r.status_code != 200:
                        local["tick_errors"] += 1
                        errs[f"tick {r.status_code}"] = errs.get(f"tick {r.status_code}", 0) + 1
                except requests.RequestException as exc:
                    local["tick_errors"] += 1
                    errs[f"tick {type(exc).__name__}"] = errs.get(f"tick {type(exc).__name__}", 0) + 1
            with lock:
                if last_acked is not None:
                    acked_state[item] = last_acked
                for k, v in local.items():
                    counts[k] += v
                latencies.extend(lat)
                poll_latencies.extend(plat)
                for k, v in errs.items():
                    errors[k] = errors.get(k, 0) + v

        def run_threads(target, args_list) -> None:
            threads = [threading.Thread(target=target, args=(a,), daemon=True) for a in args_list]
            for t in threads:
                t.start()
            window["end"] = time.monotonic() + 0.05 + SECONDS  # set before anyone passes the barrier
            barrier.wait()
            for t in threads:
                t.join(SECONDS + 60)

        def audit_events() -> int:
            return stats.conn.execute(
                "SELECT count(*) FROM checklists_auditevent WHERE run_id = %s AND action = 'item.state'", (run_id,)
            ).fetchone()[0]

        events_before = audit_events()
        app_cpu_before, pg_cpu_before = cpu_seconds(children(gunicorn.pid)), cpu_seconds(stats.backends())
        run_threads(client, items[:CLIENTS])
        app_tps = counts["ticks"] / SECONDS
        worker_peak_rss_mb = max((peak_rss_mb(pid) for pid in children(gunicorn.pid)), default=None)
        app_cpu = sum(cpu_seconds(children(gunicorn.pid)).values()) - sum(app_cpu_before.values())
        pg_cpu = sum(v - pg_cpu_before.get(pid, 0.0) for pid, v in cpu_seconds(stats.backends()).items())

        # Nothing lost: each client alone ticks its item, so the item must hold the last state the
        # app said 200 to; every answered tick is one audit event; the run's kept counters agree
        # with its items.
        stored = dict(stats.conn.execute(
            "SELECT id, state FROM checklists_runitem WHERE id = ANY(%s)", (list(acked_state),)).fetchall())
        lost_updates = sum(1 for item, state in acked_state.items() if stored.get(item) != state)
        audit_events_written = audit_events() - events_before
        counted_done, kept_done = stats.conn.execute(
            "SELECT (SELECT count(*) FROM checklists_runitem WHERE run_id = r.id AND state = 'done'), r.items_done "
            "FROM checklists_run r WHERE r.id = %s", (run_id,)).fetchone()
        integrity = {"acked_ticks": counts["acked"], "audit_events": audit_events_written, "lost_updates": lost_updates,
                     "items_done_counted": counted_done, "items_done_kept": kept_done}

        def pct(values: list[float], q: float) -> float:
            if not values:
                return 0.0
            values = sorted(values)
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)

        # --- The floor: the same writes straight into Postgres ---------------------------------
        user_id = stats.conn.execute("SELECT id FROM auth_user WHERE username = 'bench'").fetchone()[0]
        floor_run_id, floor_items = runs["floor"]
        floor_counts = {"ticks": 0, "errors": 0}
        barrier = threading.Barrier(CLIENTS + 1, timeout=120)

        # The sections each floor item counts in, as the kernel keeps them.
        floor_sections = dict(stats.conn.execute(
            "SELECT id, section_path FROM checklists_runitem WHERE id = ANY(%s)", (floor_items[:CLIENTS],)).fetchall())

        def floor_client(item: int) -> None:
            """One tick as the kernel writes it, in one transaction: lock the run's row, take the next
            revision, set the item, move its sections' and the run's counters, append the event."""
            conn = psycopg.connect(database_url)
            state, done, failed = "done", 0, 0
            sections = floor_sections[item]
            barrier.wait()
            end = window["end"]
            while time.monotonic() < end:
                other = "todo" if state == "done" else "done"
                step = 1 if state == "done" else -1
                try:
                    with conn.cursor() as cur:
                        rev = cur.execute("SELECT revision FROM checklists_run WHERE id = %s FOR UPDATE",
                                          (floor_run_id,)).fetchone()[0] + 1
                        cur.execute(
                            "UPDATE checklists_runitem SET state = %s, reason = '', changed_by_id = %s, "
                            "changed_by_name = %s, changed_at = now(), holds_gate = %s, revision = %s WHERE id = %s",
                            (state, user_id, "bench", state != "done", rev, item))
                        cur.execute("UPDATE checklists_runsection SET items_closed = items_closed + %s WHERE id = ANY(%s)",
                                    (step, sections))
                        cur.execute(
                            "INSERT INTO checklists_auditevent (run_id, item_id, actor_id, actor_name, action, "
                            "before, after, at, revision) VALUES (%s, %s, %s, %s, 'item.state', %s, %s, now(), %s)",
                            (floor_run_id, item, user_id, "bench", json.dumps({"state": other, "reason": ""}),
                             json.dumps({"state": state, "reason": ""}), rev))
                        cur.execute("UPDATE checklists_run SET revision = %s, items_done = items_done + %s, "
                                    "gate_open = gate_open - %s WHERE id = %s", (rev, step, step, floor_run_id))
                    conn.commit()
                    if time.monotonic() <= end:
                        done += 1
                    state = other
                except psycopg.Error:
                    conn.rollback()
                    failed += 1
            conn.close()
            with lock:
                floor_counts["ticks"] += done
                floor_counts["errors"] += failed

        floor_before = stats.read()
        run_threads(floor_client, floor_items[:CLIENTS])
        floor_rows = sum(Stats.diff(floor_before, stats.read()).values())
        floor_tps = floor_counts["ticks"] / SECONDS
        stats.conn.close()
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            try:
                gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(gunicorn.pid, signal.SIGKILL)
                gunicorn.wait()
        if os.environ.get("BENCH_KEEP_DB") == "1":
            print(f"kept the database {DB_NAME} (BENCH_KEEP_DB=1)")
        else:
            drop_database(DB_NAME)

    ratio = app_tps / floor_tps if floor_tps else 0.0
    report = {
        "autovacuum": autovacuum, "analyzed_after_setup": True, "ballast_runs": BALLAST,
        "gunicorn": " ".join(["gunicorn", "deploycheck.wsgi", *GUNICORN_ARGS]),
        "clients": CLIENTS, "seconds": SECONDS,
        "rows": rows,
        "app": {"ticks": counts["ticks"], "ticks_per_s": round(app_tps, 1), "tick_errors": counts["tick_errors"],
                "gunicorn_cpu_ms_per_tick": round(app_cpu * 1000 / counts["ticks"], 1) if counts["ticks"] else None,
                "postgres_cpu_ms_per_tick": round(pg_cpu * 1000 / counts["ticks"], 1) if counts["ticks"] else None,
                "tick_p50_ms": pct(latencies, 0.5), "tick_p95_ms": pct(latencies, 0.95),
                "polls": counts["polls"], "polls_with_changes": counts["polls_200"], "poll_errors": counts["poll_errors"],
                "poll_p50_ms": pct(poll_latencies, 0.5), "poll_p95_ms": pct(poll_latencies, 0.95), "errors": errors,
                "gunicorn_worker_peak_rss_mb": worker_peak_rss_mb, **integrity},
        "floor": {"ticks": floor_counts["ticks"], "ticks_per_s": round(floor_tps, 1), "errors": floor_counts["errors"],
                  "rows_per_tick": round(floor_rows / floor_counts["ticks"], 1) if floor_counts["ticks"] else None},
        "ratio": round(ratio, 3),
        "targets": {"ratio_min": TARGET_RATIO, "ratio_aim": AIM_RATIO, "rows_per_tick_under": TARGET_ROWS, "worker_rss_mb_max": 150},
    }
    (RESULTS / "ticks.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"gunicorn: {report['gunicorn']}; {CLIENTS} clients for {SECONDS:g} s, each polling once a second")
    print(f"{BALLAST} other 300-item runs in the database; tables analysed after setup (this server's autovacuum: {autovacuum})")
    print(f"{'measure':<38}{'value':>12}   target")
    for r in rows:
        if r["index_plans"]:
            mark = "ok" if r["rows_per_tick"] < TARGET_ROWS else "MISSED"
            label = f"rows read per tick, {r['items']} items"
            print(f"{label:<38}{r['rows_per_tick']:>12}   tens, not hundreds ({mark})")
        else:
            label = f"  planner's choice, {r['items']} items"
            print(f"{label:<38}{r['rows_per_tick']:>12}   (seq scans of small tables allowed)")
        top = ", ".join(f"{k} {v}" for k, v in list(r["per_table_per_tick"].items())[:5])
        print(f"{'':<4}{top}")
        print(f"{'':<4}sequential: {r['sequential_ms_per_tick']} ms per tick")
    print(f"{'rows read per tick, floor':<38}{report['floor']['rows_per_tick']!s:>12}")
    print(f"{'ticks/s through gunicorn':<38}{app_tps:>12.1f}   "
          f"(p50 {report['app']['tick_p50_ms']} ms, p95 {report['app']['tick_p95_ms']} ms, {counts['tick_errors']} errors)")
    print(f"{'  CPU per tick (polls included)':<38}{report['app']['gunicorn_cpu_ms_per_tick']!s:>12}   "
          f"ms in gunicorn, {report['app']['postgres_cpu_ms_per_tick']} ms in its Postgres backends ({os.cpu_count()} CPUs)")
    print(f"{'  polls of the run page':<38}{counts['polls']:>12}   "
          f"({counts['polls_200']} with changes; p50 {report['app']['poll_p50_ms']} ms, p95 {report['app']['poll_p95_ms']} ms, "
          f"{counts['poll_errors']} errors)")
    print(f"{'  lost updates':<38}{integrity['lost_updates']:>12}   (target 0; {integrity['acked_ticks']} ticks answered 200, "
          f"{integrity['audit_events']} audit events; items done {integrity['items_done_counted']}, "
          f"the run's counter {integrity['items_done_kept']})")
    print(f"{'  peak RSS of a gunicorn worker':<38}{worker_peak_rss_mb!s:>12}   MB (target <= 150, aim 120)")
    print(f"{'floor ticks/s (the kernel writes)':<38}{floor_tps:>12.1f}   ({floor_counts['errors']} errors)")
    print(f"{'ratio':<38}{ratio:>12.3f}   >= {TARGET_RATIO} (aim {AIM_RATIO}): {'ok' if ratio >= TARGET_RATIO else 'MISSED'}")
    if errors:
        print("errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())))
    sound = (integrity["lost_updates"] == 0 and integrity["audit_events"] == integrity["acked_ticks"]
             and integrity["items_done_counted"] == integrity["items_done_kept"] and not counts["tick_errors"])
    return 0 if ratio >= TARGET_RATIO and sound else 1


if __name__ == "__main__":
    raise SystemExit(main())
