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
            f"| floor ticks/s (the same writes directly in Postgres) | {floor['ticks_per_s']} | |",
            f"| ratio | {ticks['ratio']} | >= {ticks['targets']['ratio_min']} (aim {ticks['targets']['ratio_aim']}) {'ok' if ticks['ratio'] >= ticks['targets']['ratio_min'] else 'MISSED'} |",
            f"| gunicorn CPU per tick (polls included) | {app['gunicorn_cpu_ms_per_tick']} ms | |",
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
    suggestions = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suggestions.py")], capture_output=True, text=True, timeout=300)
    out += ["## Suggested checks (benchmarks/suggestions.py)", "", "```", suggestions.stdout.strip(), "```", ""]
    out += ["## Not measured yet", "", "- the 300-item run page: queries, render time and the 204 poll (issue 12)", ""]
    (ROOT / "benchmarks" / "RESULTS.md").write_text("\n".join(out))
    print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
