"""With `make run` going, a newcomer types the README's management commands in a second terminal.

Nothing is set there: no SECRET_KEY, DATABASE_URL, REDIS_URL or DEBUG. The command must find the
SQLite database and the key `make run` keeps under DEPLOYCHECK_VAR_DIR (var/ by default), and
production without any key must still refuse to start.
"""

import os
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
# What a fresh terminal does not have (make test sets the first ones; nested make must not see ours).
NOT_IN_A_FRESH_TERMINAL = (
    "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY_FALLBACKS", "DJANGO_SETTINGS_MODULE",
    "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DEPLOYCHECK_MANIFEST_STATIC",
    "DJANGO_ALLOW_ASYNC_UNSAFE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEPLOYCHECK_PASSWORD",
)


def fresh_env(var_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NOT_IN_A_FRESH_TERMINAL}
    env["DEPLOYCHECK_VAR_DIR"] = str(var_dir)
    env.update(extra)
    return env


def write_secret_key(var_dir: Path) -> str:
    """As scripts/run.sh writes it: `print(secrets.token_urlsafe(50))` into var/secret_key, mode 600."""
    key = secrets.token_urlsafe(50)
    path = var_dir / "secret_key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def run(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def roles_of(var_dir: Path, username: str) -> set[str] | None:
    with sqlite3.connect(var_dir / "deploycheck.sqlite3") as db:
        user = db.execute("SELECT id FROM auth_user WHERE username = ?", (username,)).fetchone()
        if user is None:
            return None
        rows = db.execute(
            "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?", user
        ).fetchall()
    return {name for (name,) in rows}


@pytest.fixture(scope="module")
def make_run_var(tmp_path_factory):
    """A var dir as `make run` leaves it: its secret key and a migrated SQLite database."""
    var_dir = tmp_path_factory.mktemp("var")
    key = write_secret_key(var_dir)
    migrated = run([PY, "manage.py", "migrate", "--noinput"], fresh_env(var_dir, SECRET_KEY=key, DEBUG="1"), timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return var_dir, key


def test_manage_py_in_a_second_terminal_uses_make_runs_key_and_database(make_run_var):
    var_dir, key = make_run_var

    granted = run([PY, "manage.py", "grant", "alice", "lead", "--create"], fresh_env(var_dir, DEPLOYCHECK_PASSWORD="a-long-pass-phrase-1"))

    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert "alice: lead" in granted.stdout
    assert roles_of(var_dir, "alice") == {"lead"}
    # The very key the running app signs sessions and encrypts secrets with.
    shown = run([PY, "manage.py", "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"], fresh_env(var_dir))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == key


def test_make_manage_runs_a_command_with_make_runs_environment(make_run_var):
    var_dir, key = make_run_var

    granted = run(
        ["make", "--no-print-directory", "manage", 'ARGS=grant bob member "Tech Lead" --create'],
        fresh_env(var_dir, DEPLOYCHECK_PASSWORD="a-long-pass-phrase-2"), timeout=300,
    )

    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert 'bob: member, sign-off "Tech Lead"' in granted.stdout
    assert roles_of(var_dir, "bob") == {"member"}
    assert (var_dir / "secret_key").read_text().strip() == key  # kept, not regenerated


def test_deploycheck_console_script_is_manage_py(make_run_var):
    var_dir, _ = make_run_var
    script = ROOT / ".venv" / "bin" / "deploycheck"
    assert script.exists(), "pyproject's [project.scripts] deploycheck is not installed: run `make install`"

    granted = run([str(script), "grant", "carol", "viewer", "--create"], fresh_env(var_dir, DEPLOYCHECK_PASSWORD="a-long-pass-phrase-3"))

    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert roles_of(var_dir, "carol") == {"viewer"}


@pytest.mark.parametrize("key_file", ["missing", "empty"])
def test_without_a_key_or_make_runs_key_file_production_still_refuses(tmp_path, key_file):
    if key_file == "empty":
        (tmp_path / "secret_key").write_text("\n")

    finished = run([PY, "manage.py", "grant", "alice", "lead", "--create"], fresh_env(tmp_path, DEPLOYCHECK_PASSWORD="a-long-pass-phrase-1"))

    assert finished.returncode != 0
    assert "SECRET_KEY is not set" in finished.stderr
    assert not (tmp_path / "deploycheck.sqlite3").exists() or roles_of(tmp_path, "alice") is None


def test_an_explicit_secret_key_wins_over_the_file(tmp_path):
    write_secret_key(tmp_path)

    shown = run(
        [PY, "manage.py", "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"],
        fresh_env(tmp_path, SECRET_KEY="from-the-environment-" + "x" * 50),
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == "from-the-environment-" + "x" * 50
