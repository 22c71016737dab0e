"""Load balancers and orchestrators probe the service."""

import socket

import pytest


def test_healthz_answers_without_login(client, db):
    answer = client.get("/healthz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_the_broker(client, db):
    answer = client.get("/readyz")

    assert answer.status_code == 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readyz_is_503_and_tells_an_admin_why_when_the_broker_is_unreachable(client, make_user, broker_at):
    broker_at(f"redis://127.0.0.1:{free_port()}/0")
    client.force_login(make_user("ada", "admin"))

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert "broker" in answer.json()["error"]


def test_readyz_is_503_without_the_reason_for_an_anonymous_probe(client, db, broker_at):
    broker_at(f"redis://127.0.0.1:{free_port()}/0")

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "error": "not ready"}


@pytest.mark.django_db
def test_pages_need_a_login(client):
    answer = client.get("/")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")
