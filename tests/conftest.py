"""Shared arrangements: people with roles, a pipeline's API client, checklist files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

SHARED = Path(os.environ.get("DEPLOYCHECK_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SEEDS = SHARED / "seeds"
CORPUS = SHARED / "corpus"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # A million PBKDF2 rounds per user is the production cost, not a test's.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db, monkeypatch):
    """A person with access and sign-off roles, made the way an operator does: `manage.py grant`."""
    monkeypatch.setenv("DEPLOYCHECK_PASSWORD", "correct horse battery staple")

    def make(username: str, *roles: str):
        call_command("grant", username, *(roles or ("viewer",)), "--create", stdout=open(os.devnull, "w"))
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(username=username)

    return make


class ApiClient:
    """What a CI pipeline does: JSON over HTTP with a bearer token."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _answer(self, response):
        response.json_body = None
        if response.get("Content-Type", "").startswith("application/json"):
            response.json_body = json.loads(response.content or b"null")
        return response

    def get(self, path, **params):
        return self._answer(self.client.get(path, params, headers=self.headers))

    def post(self, path, body=None, headers=None):
        return self._send(self.client.post, path, body, headers)

    def put(self, path, body=None, headers=None):
        return self._send(self.client.put, path, body, headers)

    def delete(self, path, headers=None):
        return self._answer(self.client.delete(path, headers={**self.headers, **(headers or {})}))

    def _send(self, method, path, body, headers):
        return self._answer(
            method(
                path,
                data=json.dumps(body if body is not None else {}),
                content_type="application/json",
                headers={**self.headers, **(headers or {})},
            )
        )


@pytest.fixture
def api_as(db):
    from checklists.models import ApiToken

    def as_user(user):
        _, raw = ApiToken.issue(user, name="test pipeline")
        return ApiClient(raw)

    return as_user


@pytest.fixture
def anonymous_api():
    return ApiClient(None)


@pytest.fixture
def lead(make_user):
    return make_user("lena", "lead")


@pytest.fixture
def member(make_user):
    return make_user("mo", "member")


@pytest.fixture
def lead_browser(client, lead):
    """A lead signed in to the pages."""
    client.force_login(lead)
    return client


SMALL_CHECKLIST = """\
# Small Launch

What we do for a small release.

## Before

- [ ] Tag the release
- [ ] Backups are recent <!-- check: tcp host=127.0.0.1 port=5432 probe=postgres -->
  - [ ] Restore tested <!-- optional -->

## Deploy

- [ ] Deploy the build
- [ ] Health endpoint answers <!-- check: http url="{{ base_url }}/health" -->

## Watch
<!-- after-go-live -->

- [ ] Error rate normal after one hour

## Sign-Off

- [ ] Tech Lead
- [ ] Security Lead
"""


@pytest.fixture
def small_template(db, lead):
    from checklists import markdown as md
    from checklists import services

    return services.template_import(md.parse(SMALL_CHECKLIST), actor=lead, source=SMALL_CHECKLIST)


@pytest.fixture
def run(small_template, member):
    """A member's run of the small checklist for shop, production, version 1 (a module's own
    `run` fixture wins where a story needs another)."""
    from checklists import services

    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=member)
    return run


# --- Real servers and a real worker ---------------------------------------------------------

import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def broker_at():
    """Point the Celery app (and /readyz) at another broker for one test."""
    from deploycheck.celery import app

    original = app.conf.broker_url

    def point(url: str):
        app.conf.broker_url = url

    yield point
    app.conf.broker_url = original


@pytest.fixture
def throwaway_redis(tmp_path):
    """A Redis of the test's own, so a fault test can stop it without touching the shared one."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        process = None

        def start(self):
            """Start it (again, on the same port: "Redis is back")."""
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for_port(port)

        def stop(self):
            self.process.terminate()
            self.process.wait(timeout=10)

        def queued(self) -> int:
            """Messages waiting in this run's Celery queue."""
            import redis
            from django.conf import settings

            return redis.Redis.from_url(self.url).llen(settings.CELERY_TASK_DEFAULT_QUEUE)

    server = Server()
    server.start()
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_database_url() -> str:
    from django.db import connection

    settings_dict = connection.settings_dict
    return f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"


test_database_url.__test__ = False


class WorkerWorld:
    """What the worker's operator configured, for the session: an internal CA its TLS checks
    trust, a resolver it asks for every name (a DNS server on 127.0.0.1 the tests fill), a
    folder backups may be looked for in, and one loopback address it must refuse."""

    DENIED = "127.0.0.2"

    def __init__(self, base: Path):
        import trustme

        from .servers import DNSServer

        self.ca = trustme.CA(organization_name="deploycheck worker test CA")
        self.ca_path = base / "internal-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.backup_root = base / "backups"
        self.backup_root.mkdir()
        self.dns = DNSServer({("localhost", "A"): ["127.0.0.1"]}).start()

    def add_records(self, records: dict[tuple[str, str], list[str]]) -> None:
        for (name, rdtype), values in records.items():
            self.dns.records[(name.lower().rstrip("."), rdtype.upper())] = values

    @property
    def env(self) -> dict[str, str]:
        return {
            "DEPLOYCHECK_CA_BUNDLE": str(self.ca_path),
            "DEPLOYCHECK_CHECK_NAMESERVERS": self.dns.address,
            "DEPLOYCHECK_BACKUP_ROOTS": str(self.backup_root),
            "DEPLOYCHECK_CHECK_DENY_NETS": f"{self.DENIED}/32",
        }


@pytest.fixture(scope="session")
def worker_world(tmp_path_factory):
    world = WorkerWorld(tmp_path_factory.mktemp("worker-world"))
    yield world
    world.dns.stop()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, worker_world):
    """A real worker, started plainly as an operator would, on the test database and Redis,
    configured through its environment as `worker_world` says."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": test_database_url(), **worker_world.env}
    handle = open(log, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deploycheck", "worker", "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", f"test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    process.log_path = log
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    handle.close()


class Worker:
    """`celery worker` as an operator starts it, under a fixed node name, on one queue."""

    def __init__(self, queue: str, env: dict, log_dir, node: str | None = None):
        self.queue, self.env, self.log_dir = queue, dict(env), log_dir
        self.node = node or f"{queue}@localhost"
        self.process = None
        self.starts = 0
        self.siblings: list[Worker] = []

    def start(self, **env) -> None:
        self.env.update(env)
        self.starts += 1
        log = self.log_dir / f"{self.node}-{self.starts}.log"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "deploycheck", "worker", "-Q", self.queue, "-n", self.node,
             "--loglevel=INFO", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.1)

    def sibling(self, node: str) -> "Worker":
        """Another worker on the same queue (a second replica), stopped with this one."""
        other = Worker(self.queue, self.env, self.log_dir, node=node)
        self.siblings.append(other)
        return other

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def own_worker(settings, tmp_path, worker_world):
    """A worker only this test uses (a fault test may kill it), on a queue of its own; call
    `start(REDIS_URL=...)` to point it at another broker."""
    import uuid

    queue = f"owntest-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue  # this test's publishes go to its own worker
    worker = Worker(queue, {**os.environ, "DATABASE_URL": test_database_url(), "DEPLOYCHECK_QUEUE": queue, **worker_world.env}, tmp_path)
    yield worker
    worker.stop()
    for other in worker.siblings:
        other.stop()


def beat_sweeps_outbox(queue: str) -> bool:
    """What the beat does every 30 s: ask a worker on `queue` to sweep the outbox. False while
    the broker is still coming back (callers wait_until it takes)."""
    from checklists.tasks import outbox_sweep
    from deploycheck.celery import app

    try:
        with app.connection_for_write() as broker:
            outbox_sweep.apply_async(connection=broker, queue=queue, retry=False)
        return True
    except Exception:
        return False


def wait_until(predicate, timeout: float = 30, interval: float = 0.1):
    """Poll what a user would see until it holds (bounded; returns the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
