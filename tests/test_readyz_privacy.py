"""/readyz tells a load balancer ok / not ok; only an admin signed in reads why.

A driver's error names the host, the port and the user it tried: an anonymous caller on the
internet must not learn them from a probe.
"""

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broken_broker(broker_at):
    """The broker URL points at a port where nothing listens, with a user and password in it."""
    port = free_port()
    broker_at(f"redis://opsbroker:hunter2@127.0.0.1:{port}/0")
    return port


def test_an_anonymous_probe_learns_only_that_the_service_is_not_ready(client, db, broken_broker):
    answer = client.get("/readyz")

    body = answer.content.decode()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "error": "not ready"}
    for secret in ("127.0.0.1", str(broken_broker), "opsbroker", "hunter2", "redis", "Connection", "Error"):
        assert secret not in body
    assert "no-store" in answer["Cache-Control"]


def test_a_signed_in_member_who_is_not_staff_learns_no_more(client, make_user, broken_broker):
    client.force_login(make_user("mo", "member"))

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "error": "not ready"}


def test_an_admin_signed_in_reads_why(client, make_user, broken_broker):
    client.force_login(make_user("ada", "admin"))

    answer = client.get("/readyz")

    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error.startswith("broker: ") and str(broken_broker) in error


def test_when_all_is_well_everyone_reads_ok(client, make_user):
    assert client.get("/readyz").json() == {"status": "ok"}
    client.force_login(make_user("ada", "admin"))
    assert client.get("/readyz").json() == {"status": "ok"}
