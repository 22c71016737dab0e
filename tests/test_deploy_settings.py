"""An operator deploys with production settings: Django's deployment check has nothing to say."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = ("DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DEPLOYCHECK_MANIFEST_STATIC", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")


def test_check_deploy_passes_with_no_warnings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY}
    env.update(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="deploy.example.com", DEPLOYCHECK_VAR_DIR=str(tmp_path))

    finished = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "no issues" in finished.stdout


def test_without_a_secret_key_production_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY}
    env.update(DEPLOYCHECK_VAR_DIR=str(tmp_path))

    finished = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert finished.returncode != 0
    assert "SECRET_KEY is not set" in finished.stderr
