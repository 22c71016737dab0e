"""An operator deploys with docker compose: the stack scales out and the image holds no local state.

No Docker engine runs here, so the compose file is read as compose reads it (YAML with merge
keys) and the image's contents are worked out from the Dockerfile and .dockerignore the way
`docker build` applies them.
"""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LONG_RUNNING = ("db", "redis", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def command(service: dict) -> str:
    value = service["command"]
    return " ".join(value) if isinstance(value, list) else value


def test_beat_runs_once_apart_from_workers_that_can_scale(compose):
    assert "--beat" not in command(compose["worker"]) and " beat" not in command(compose["worker"])
    assert command(compose["beat"]).startswith("celery -A deploycheck beat")
    assert compose["beat"].get("deploy", {}).get("replicas") == 1
    assert "deploy" not in compose["worker"] or "replicas" not in compose["worker"]["deploy"]


def test_migrations_run_once_before_anything_that_reads_the_schema(compose):
    migrate = compose["migrate"]
    assert "manage.py migrate" in command(migrate)
    assert migrate["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert compose[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "migrate" not in command(compose[name]), f"{name} must not migrate: replicas would race"


def test_every_long_running_service_has_a_healthcheck_that_can_run_in_its_image(compose):
    for name in LONG_RUNNING:
        assert compose[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    web = compose["web"]["healthcheck"]["test"]
    assert web == ["CMD", "python", "-m", "deploycheck.probe"]  # the slim image has no curl
    assert (ROOT / "deploycheck" / "probe.py").exists()
    assert "inspect ping -d celery@$$HOSTNAME" in " ".join(compose["worker"]["healthcheck"]["test"])
    assert "pg_isready" in compose["db"]["healthcheck"]["test"]
    assert "ping" in compose["redis"]["healthcheck"]["test"]


def test_the_app_services_set_only_variables_the_settings_read(compose):
    settings_text = (ROOT / "deploycheck" / "settings.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|env_list|env_bool|environ\[)\(?\s*["']([A-Z0-9_]+)["']""", settings_text))
    for name in ("web", "worker", "beat", "migrate"):
        unknown = set(compose[name]["environment"]) - read
        assert not unknown, f"{name} sets {unknown}, which the settings never read"
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= set(compose["web"]["environment"])


def test_web_runs_gunicorn_with_the_config_in_the_repository(compose):
    assert shlex.split(command(compose["web"])) == ["gunicorn", "-c", "gunicorn.conf.py", "deploycheck.wsgi"]
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == "gthread"
    assert config["workers"] >= 2 and config["threads"] >= 2
    assert config["keepalive"] >= 2 and config["timeout"] <= 60


# --- the image -------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as `docker build` reads it: anchored at the context root, `**` any number
    of folders, a leading `!` re-includes, the last matching line wins."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append((include, re.compile(regex + "$")))
    return patterns


def ignored(path: str, patterns) -> bool:
    parts = path.split("/")
    # A folder that is ignored takes its contents with it.
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        verdict = None
        for include, regex in patterns:
            if regex.match(prefix):
                verdict = not include
        if verdict:
            return True
    return False


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


LOCAL_STATE = ["var/secret_key", "var/deploycheck.sqlite3", "var/broker/in/x.msg", ".venv/bin/python", ".git/config",
               ".env", "checklists/__pycache__/models.cpython-311.pyc", "celerybeat-schedule", "test-artifacts/screenshots/a.png",
               "deploycheck/var/secret_key", "db.sqlite3"]


@pytest.mark.parametrize("path", LOCAL_STATE)
def test_local_state_never_reaches_the_build_context(path):
    assert ignored(path, dockerignore_patterns()), f"{path} would be sent to docker build"


def test_the_code_does_reach_the_build_context():
    patterns = dockerignore_patterns()
    for path in ("manage.py", "gunicorn.conf.py", "pyproject.toml", "deploycheck/settings.py", "checklists/models.py",
                 "templates/base.html", "static/js/htmx.min.js"):
        assert not ignored(path, patterns), path


def test_the_image_copies_only_code_runs_as_a_user_and_holds_its_static_files():
    steps = dockerfile()
    copied = [src for op, args in steps if op == "COPY" for src in args.split()[:-1]]
    assert "." not in copied, "COPY . copies whatever the checkout holds"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source, dockerignore_patterns()), f"{source} is copied but ignored"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
    last_run = max(i for i, (op, _) in enumerate(steps) if op == "RUN")
    assert max(i for i, (op, _) in enumerate(steps) if op == "USER") > last_run
    assert any(op == "RUN" and "collectstatic" in args for op, args in steps)
    env = " ".join(args for op, args in steps if op == "ENV")
    static_root = re.search(r"DEPLOYCHECK_STATIC_ROOT=(\S+)", env).group(1)
    volumes = " ".join(args for op, args in steps if op == "VOLUME")
    assert static_root not in volumes
    assert not re.search(r"SECRET_KEY=(?!collectstatic-at-build-only)", env), "a key baked into the image"


def test_static_root_follows_the_setting_the_image_sets(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEPLOYCHECK_STATIC_ROOT": str(tmp_path / "static-in-image")}
    printed = subprocess.run([sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'deploycheck.settings'); django.setup(); from django.conf import settings; print(settings.STATIC_ROOT)"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert printed.stdout.strip() == str(tmp_path / "static-in-image"), printed.stderr


def test_gunicorn_logs_json_and_leaves_request_lines_to_the_app():
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["accesslog"] is None
    formatter = config["logconfig_dict"]["formatters"]["json"]["()"]  # shared with settings.LOGGING
    assert formatter == "pythonjsonlogger.json.JsonFormatter"


@pytest.mark.django_db(transaction=True)
def test_the_web_healthcheck_probe_says_whether_the_app_answers(live_server, tmp_path):
    import os
    import subprocess
    import sys

    def probe(url: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "ALLOWED_HOSTS": "localhost,deploy.example.com"}
        return subprocess.run([sys.executable, "-m", "deploycheck.probe", url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)

    with __import__("socket").socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    assert probe(f"{live_server.url}/healthz").returncode == 0
    refused = probe(f"http://127.0.0.1:{port}/healthz")
    assert refused.returncode == 1 and "refused" in refused.stderr.lower()
