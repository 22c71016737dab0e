"""Write benchmarks/RESULTS.md from the last runs' results (benchmarks/results/*.json), with
the machine they ran on and the suggester's figures. `make bench` runs it last."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _read(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), None)
    try:
        postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        postgres = "psql not found"
    return [
        f"- {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}",
        f"- {os.cpu_count()} CPUs ({cpu}), {memory} MB memory, {platform.platform()}",
        f"- Python {platform.python_version()}, {postgres}",
    ]


def main() -> int:
    out = ["# Benchmark results", "", "Written by `make bench` (benchmarks/report.py); each figure against its target.", "", "## Machine", "", *_machine(), ""]
    ticks = _read("ticks.json")
    out += ["## Ticks through the stack (benchmarks/ticks.py)", ""]
    if ticks:
        app, floor = ticks["app"], ticks["floor"]
        rss = app.get("gunicorn_worker_peak_rss_mb")
        out += [
            f"`{ticks['gunicorn']}`, {ticks['clients']} clients for {ticks['seconds']} s, each also polling the run page.",
            "",
            "| measure | value | target |",
            "| --- | --- | --- |",
            f"| ticks/s through gunicorn | {app['ticks_per_s']} (p50 {app['tick_p50_ms']} ms, p95 {app['tick_p95_ms']} ms) | |",
            f"| tick errors / poll errors | {app['tick_errors']} / {app['poll_errors']} | 0 |",
            f"| floor ticks/s (the kernel's writes for a tick, directly in Postgres, as many clients) | {floor['ticks_per_s']} | |",
            f"| ratio | {ticks['ratio']} | >= {ticks['targets']['ratio_min']} (aim {ticks['targets']['ratio_aim']}) {'ok' if ticks['ratio'] >= ticks['targets']['ratio_min'] else 'MISSED'} |",
            f"| gunicorn CPU per tick (polls included) | {app['gunicorn_cpu_ms_per_tick']} ms | |",
            f"| polls of the run page (each client once a second) | {app['polls']} ({app['polls_with_changes']} with changes; p50 {app['poll_p50_ms']} ms, p95 {app['poll_p95_ms']} ms) | |",
            f"| lost updates | {app.get('lost_updates', '-')} | 0 {'ok' if app.get('lost_updates') == 0 else 'MISSED'} |",
            f"| ticks answered 200 / audit events written | {app.get('acked_ticks', '-')} / {app.get('audit_events', '-')} | equal {'ok' if app.get('acked_ticks') == app.get('audit_events') else 'MISSED'} |",
            f"| items done / the run's kept counter | {app.get('items_done_counted', '-')} / {app.get('items_done_kept', '-')} | equal |",
            f"| peak RSS of a gunicorn worker | {rss} MB | <= 150 (aim 120) {'ok' if rss is not None and rss <= 150 else 'MISSED'} |",
        ]
        for row in ticks["rows"]:
            if row["index_plans"]:
                out.append(f"| rows read per tick, {row['items']} items | {row['rows_per_tick']} | tens, not hundreds |")
    else:
        out.append("Not run yet.")
    out.append("")
    verifications = _read("verifications.json")
    out += ["## Verification fan-out (benchmarks/verifications.py)", ""]
    if verifications:
        out += ["| scenario | checks | wall s | floor s | worker peak MB | passed | failed | error |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in verifications["scenarios"]:
            out.append(f"| {r['name']} | {r['checks']} | {r['wall_s']} | {r.get('floor_s', '-')} | {r['worker_peak_mb']} | {r['passed']} | {r['failed']} | {r['error']} |")
        out += ["", f"300 × 500 ms checks: {verifications['ratio_300x500ms']} × the floor (target <= 2.0); Celery worker idle {verifications['worker_idle_mb']} MB, peak target 250 MB (aim 200)."]
    else:
        out.append("Not run yet.")
    out.append("")
    history = _read("history.json")
    out += ["## History, reports and compare at scale (benchmarks/history.py)", ""]
    if history:
        small, large = history["small"], history["large"]
        out += [
            f"`manage.py generate_history` runs of {history['items_per_run']} items ({large} runs generated in "
            f"{round(sum(g['seconds'] for g in history['generated'].values()))} s); each page through Django's test client, "
            f"median of {history['repeat']} requests, against `SELECT count(*)` over the same rows in the same run.",
            "",
            f"| page | queries at {small} / {large} | {small} runs | {large} runs | ratio | count(*) floor at {large} | target |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in history["rows"]:
            verdict = "ok" if row["under_target"] and row["queries_small"] == row["queries_large"] else "MISSED"
            aim = "" if row["within_aim"] else f", aim <= {history['targets']['aim_ratio']}x missed"
            out.append(
                f"| {row['page']} | {row['queries_small']} / {row['queries_large']} | {row['small_ms']} ms | {row['large_ms']} ms "
                f"| {row['ratio']}x | {row['floor_ms']} ms ({row['floor']}) | <= {history['targets']['max_ms']} ms {verdict}{aim} |"
            )
    else:
        out.append("Not run yet.")
    out.append("")
    suggestions = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suggestions.py")], capture_output=True, text=True, timeout=300)
    out += ["## Suggested checks (benchmarks/suggestions.py)", "", "```", suggestions.stdout.strip(), "```", ""]
    page = _read("page.json")
    out += ["## The run page (benchmarks/page.py)", ""]
    if page:
        floor = page["floor_select_items_ms"]
        out += [
            f"Our users' biggest seed ({page['seed']}, {page['page_full']['items']} items) and a 30-item cut of it; server time "
            f"per request in-process (no network), medians of {page['repeats']}; the floor is one SELECT of the run's "
            f"{page['floor_rows']} items straight from Postgres ({floor} ms).",
            "",
            "| request | queries | CPU ms | wall ms | × floor | KB |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows = [(f"run page, 30 items, rows {t}", page["page_30"][t]) for t in ("cold", "warm")]
        rows += [(f"run page, {page['page_full']['items']} items, rows {t}", page["page_full"][t]) for t in ("cold", "warm")]
        rows += [("poll, nothing new (204), 30 items", page["poll_idle_30"]),
                 (f"poll, nothing new (204), {page['page_full']['items']} items", page["poll_idle_full"]),
                 (f"poll after 25 ticks by others, {page['page_full']['items']} items", page["poll_busy_full"])]
        for label, m in rows:
            out.append(f"| {label} | {m['queries']} | {m['cpu_ms']} | {m['wall_ms']} | {m['wall_ms'] / floor:.1f} | {m['bytes'] / 1024:.1f} |")
        out += ["", f"Queries the same on 30 and {page['page_full']['items']} items: {'yes (target: constant) ok' if page['constant_queries'] else 'NO: MISSED'}.", ""]
    else:
        out += ["Not run yet.", ""]
    (ROOT / "benchmarks" / "RESULTS.md").write_text("\n".join(out))
    print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
