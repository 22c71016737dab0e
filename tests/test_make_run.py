"""A newcomer types `make run` on a machine with no Postgres and no Redis configured."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_make_run_serves_health_and_readiness_without_any_server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    env.update(PORT=str(port), DEPLOYCHECK_VAR_DIR=str(tmp_path / "var"))
    process = subprocess.Popen(
        ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        health = ready = None
        while time.monotonic() < deadline:
            try:
                health, ready = get(f"http://127.0.0.1:{port}/healthz"), get(f"http://127.0.0.1:{port}/readyz")
                if health == ready == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.5)
        worker_log = (tmp_path / "var" / "worker.log")
        for _ in range(60):
            if worker_log.exists() and "ready" in worker_log.read_text():
                break
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=30)[0]

    assert (health, ready) == (200, 200), output
    assert (tmp_path / "var" / "deploycheck.sqlite3").exists()
    assert "Log in at /accounts/login/ as 'admin' with password" in output
    assert "ready" in worker_log.read_text(), worker_log.read_text()
    # The broker's exchange tables stay under var/ with the rest, never in the checkout.
    assert list((tmp_path / "var" / "broker" / "control").glob("*.exchange")), output
    assert not (ROOT / "control").exists()
