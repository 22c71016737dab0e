"""Someone guesses passwords: after five failures the user name, or the address, waits.

Both doors are throttled (the app's login and the admin's), and the address is the one that
connected, unless the operator said a proxy stands in front (DEPLOYCHECK_BEHIND_PROXY): then
it is the address the proxy saw, never what a client writes into X-Forwarded-For.
"""

from __future__ import annotations

import pytest
from django.test import Client

from checklists.models import AuditEvent  # noqa: F401  (the app's models load with axes')

PASSWORD = "correct horse battery staple"
LOGINS = ["/accounts/login/", "/admin/login/"]


def attempt(door: str, username: str, password: str, address: str = "203.0.113.9", **headers):
    return Client(REMOTE_ADDR=address, headers=headers).post(door, {"username": username, "password": password})


def logged_in(answer) -> bool:
    return answer.status_code == 302 and "login" not in answer["Location"]


@pytest.fixture
def alice(make_user):
    user = make_user("alice", "lead")
    user.is_staff = True  # the admin login admits staff only
    user.save()
    return user


@pytest.mark.parametrize("door", LOGINS)
def test_five_wrong_passwords_lock_the_user_name_even_with_the_right_one_next(door, alice, make_user):
    for n in range(4):
        assert attempt(door, "alice", f"guess-{n}", address=f"198.51.100.{n}").status_code == 200
    assert attempt(door, "alice", "guess-4", address="198.51.100.4").status_code == 429  # the fifth says so at once

    refused = attempt(door, "alice", PASSWORD, address="198.51.100.77")

    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Too many failed logins" in page and "alice" in page and "15 minutes" in page
    assert "axes_reset_username alice" in page


@pytest.mark.parametrize("door", LOGINS)
def test_one_address_guessing_many_names_is_stopped_for_every_name(door, alice):
    for n in range(5):
        attempt(door, f"nobody-{n}", "guess", address="192.0.2.50")

    assert attempt(door, "alice", PASSWORD, address="192.0.2.50").status_code == 429
    # Alice from her own desk is not punished for someone else's guessing.
    assert logged_in(attempt(door, "alice", PASSWORD, address="192.0.2.51"))


def test_four_failures_then_success_starts_the_count_again(alice):
    for n in range(4):
        attempt("/accounts/login/", "alice", f"typo-{n}")
    assert logged_in(attempt("/accounts/login/", "alice", PASSWORD))
    for n in range(4):
        attempt("/accounts/login/", "alice", f"typo-again-{n}")

    assert logged_in(attempt("/accounts/login/", "alice", PASSWORD))


def test_without_the_proxy_setting_a_forged_forwarded_for_changes_nothing(alice, settings):
    settings.DEPLOYCHECK_BEHIND_PROXY = False
    for n in range(5):
        attempt("/accounts/login/", f"nobody-{n}", "guess", address="192.0.2.60", X_Forwarded_For=f"10.9.9.{n}")

    assert attempt("/accounts/login/", "alice", PASSWORD, address="192.0.2.60", X_Forwarded_For="10.9.9.200").status_code == 429


def test_behind_the_proxy_each_client_is_counted_by_the_address_the_proxy_saw(alice, settings):
    settings.DEPLOYCHECK_BEHIND_PROXY = True
    proxy = "10.0.0.2"
    for n in range(5):
        # The client put its own guess first; the proxy appended the real address.
        attempt("/accounts/login/", f"nobody-{n}", "guess", address=proxy, X_Forwarded_For=f"1.2.3.{n}, 198.51.100.20")

    assert attempt("/accounts/login/", "alice", PASSWORD, address=proxy, X_Forwarded_For="198.51.100.20").status_code == 429
    # Another person behind the same proxy logs in: the proxy's own address is not what counts.
    assert logged_in(attempt("/accounts/login/", "alice", PASSWORD, address=proxy, X_Forwarded_For="198.51.100.21"))
