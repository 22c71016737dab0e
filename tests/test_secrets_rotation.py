"""Rotating SECRET_KEY: secrets stored under the old key stay readable while it is in
SECRET_KEY_FALLBACKS; new ones are always encrypted under the current key; a secret no key
opens raises SecretUnreadable instead of passing for an empty value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from checklists import secrets
from checklists.models import Environment, EnvironmentVariable, Project
from checklists.secrets import SecretUnreadable

KEY_A = "old-secret-key-a-" + "a" * 40
KEY_B = "new-secret-key-b-" + "b" * 40
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def under_a(settings):
    settings.SECRET_KEY = KEY_A
    settings.SECRET_KEY_FALLBACKS = []
    return secrets.encrypt("s3-secret-value")


def test_a_secret_from_the_old_key_decrypts_after_rotation_with_the_old_key_in_fallbacks(under_a, settings):
    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = [KEY_A]
    assert secrets.decrypt(under_a) == "s3-secret-value"


def test_without_the_old_key_in_fallbacks_the_secret_is_unreadable(under_a, settings):
    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(SecretUnreadable, match="^secret unreadable: enter it again$") as raised:
        secrets.decrypt(under_a)
    assert isinstance(raised.value, ValueError)


def test_a_fallback_that_is_not_the_old_key_does_not_help(under_a, settings):
    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = ["some-other-key-" + "c" * 40]
    with pytest.raises(SecretUnreadable):
        secrets.decrypt(under_a)


def test_encryption_after_rotation_uses_the_new_key(under_a, settings):
    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = [KEY_A]
    token = secrets.encrypt("entered-after-rotation")

    settings.SECRET_KEY_FALLBACKS = []  # only B left
    assert secrets.decrypt(token) == "entered-after-rotation"
    settings.SECRET_KEY = KEY_A  # and A alone cannot read it
    with pytest.raises(SecretUnreadable):
        secrets.decrypt(token)


def test_rotate_reencrypts_an_old_secret_under_the_current_key(under_a, settings):
    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = [KEY_A]
    rotated = secrets.rotate(under_a)

    settings.SECRET_KEY_FALLBACKS = []
    assert secrets.decrypt(rotated) == "s3-secret-value"
    with pytest.raises(SecretUnreadable):
        secrets.rotate(under_a)


def test_a_damaged_token_is_unreadable_and_an_empty_one_is_empty(settings):
    settings.SECRET_KEY = KEY_A
    token = secrets.encrypt("value")
    with pytest.raises(SecretUnreadable):
        secrets.decrypt(token[:-4] + "AAAA")
    with pytest.raises(SecretUnreadable):
        secrets.decrypt("not a fernet token")
    assert secrets.decrypt("") == ""


def test_a_stored_secret_variable_survives_a_rotation(db, settings):
    settings.SECRET_KEY = KEY_A
    settings.SECRET_KEY_FALLBACKS = []
    environment = Environment.objects.create(project=Project.objects.create(name="shop"), name="prod")
    variable = EnvironmentVariable(environment=environment, name="s3_secret", secret=True)
    variable.value = "wJalrXUtnFEMI"
    variable.save()

    settings.SECRET_KEY = KEY_B
    settings.SECRET_KEY_FALLBACKS = [KEY_A]
    assert EnvironmentVariable.objects.get(pk=variable.pk).value == "wJalrXUtnFEMI"

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(SecretUnreadable):
        EnvironmentVariable.objects.get(pk=variable.pk).value  # noqa: B018


def test_secret_key_fallbacks_are_read_from_the_environment(tmp_path):
    env = {**os.environ, "SECRET_KEY": KEY_B, "SECRET_KEY_FALLBACKS": f"{KEY_A}, older-key", "DEPLOYCHECK_VAR_DIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-c", "from deploycheck import settings; print(settings.SECRET_KEY_FALLBACKS)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == repr([KEY_A, "older-key"])
