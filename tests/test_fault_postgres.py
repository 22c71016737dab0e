"""Launch day, Postgres restarts under load. Requests in that moment get a clean 503 (JSON for
the API, a short page for browsers), never a traceback or a bare 500, and the app recovers by
itself: no restart of gunicorn.

Everything here is the test's own: a cluster made with initdb on a free port (run as the
`postgres` user when the test runs as root, since Postgres refuses root) and gunicorn with the
repository's config.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from checklists.errors import DATABASE_UNAVAILABLE

from .conftest import ROOT, SEEDS, free_port, wait_for_port

pytestmark = [pytest.mark.fault]


def pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(f"{name} is not installed (.ci/run installs postgresql)")
    return found


class Cluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="deploycheck-pg-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(pg_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        if self.as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", action, *extra)

    def remove(self) -> None:
        try:
            self.ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def app_on_its_own_postgres(tmp_path):
    cluster = Cluster()
    cluster.ctl("start")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DATABASE_URL": cluster.url, "SECRET_KEY": "fault-test-key-" + "x" * 40, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "DEPLOYCHECK_VAR_DIR": str(tmp_path),
        "DEPLOYCHECK_PASSWORD": "correct horse battery staple", "DEPLOYCHECK_MANIFEST_STATIC": "0",
    }
    manage = lambda *args: subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=True)  # noqa: E731
    manage("migrate", "--noinput")
    manage("grant", "bob", "lead", "--create")
    token = manage("create_api_token", "bob").stdout.strip().splitlines()[-1]
    port = free_port()
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "--workers", "2", "deploycheck.wsgi"],
        cwd=ROOT, env=env, stdout=open(tmp_path / "gunicorn.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port(port, timeout=30)
    yield cluster, f"http://127.0.0.1:{port}", token, tmp_path / "gunicorn.log"
    os.killpg(gunicorn.pid, 15)
    gunicorn.wait(timeout=20)
    cluster.remove()


def test_a_postgres_restart_under_load_gets_clean_503s_and_the_app_recovers_alone(app_on_its_own_postgres):
    cluster, base, token, log = app_on_its_own_postgres
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    markdown = (SEEDS / "llm-gateway-production.md").read_text()
    template = api.post(f"{base}/api/v1/templates/import", json={"markdown": markdown}).json()
    run = api.post(f"{base}/api/v1/runs", json={"template": template["id"], "project": "gw", "environment": "prod", "version": "1"}).json()
    items = [item["id"] for item in run["items"]][:40]
    browser = requests.Session()
    login = browser.get(f"{base}/accounts/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    browser.post(f"{base}/accounts/login/", data={"username": "bob", "password": "correct horse battery staple", "csrfmiddlewaretoken": csrf})

    answers: list[tuple[str, int, str, str]] = []
    stop = threading.Event()

    def load(n: int) -> None:
        while not stop.is_set():
            for kind, send in (
                ("tick", lambda: api.post(f"{base}/api/v1/runs/{run['id']}/items/{items[n]}", json={"state": "done" if len(answers) % 2 else "todo"}, timeout=15)),
                ("api", lambda: api.get(f"{base}/api/v1/runs/{run['id']}", timeout=15)),
                ("page", lambda: browser.get(f"{base}/runs/{run['id']}/", timeout=15)),
            ):
                try:
                    answer = send()
                    answers.append((kind, answer.status_code, answer.headers.get("Content-Type", ""), answer.text[:2000]))
                except requests.RequestException as exc:
                    answers.append((kind, 0, "", repr(exc)))

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    before_restart = len(answers)
    cluster.ctl("restart", "-m", "fast")
    time.sleep(1)
    cluster.ctl("stop", "-m", "fast")  # down for a while: requests in this window must still answer cleanly
    time.sleep(2)
    during = len(answers)
    cluster.ctl("start")
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)

    assert before_restart > 10
    statuses = {status for _, status, _, _ in answers}
    assert statuses <= {200, 503}, [a for a in answers if a[1] not in (200, 503)][:3]
    outage = [a for a in answers[before_restart:during] if a[1] == 503]
    assert outage, "the stopped database never showed"
    for kind, status, content_type, body in answers:
        assert "Traceback" not in body
        if status == 503:
            if kind == "page":
                assert "Database unavailable" in body and "text/html" in content_type
            else:
                assert content_type.startswith("application/json") and DATABASE_UNAVAILABLE in body
    # Recovered by itself: the last requests of every kind succeed.
    tail = answers[-12:]
    assert {status for _, status, _, _ in tail} == {200}, tail
