"""tcp checks against the real local Redis and PostgreSQL, and ports nobody listens on."""

import ipaddress
import socket
import time

import pytest

from checklists.verifications.registry import run


def test_redis_answers_ping():
    outcome = run("tcp", {"host": "127.0.0.1", "port": "6379", "probe": "redis"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["answer"] in ("+PONG", "-NOAUTH Authentication required.")
    assert outcome.evidence["connect_ms"] >= 0


def test_postgres_answers_the_ssl_request():
    outcome = run("tcp", {"host": "127.0.0.1", "port": "5432", "probe": "postgres"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["answer"] in ("S", "N")


def test_open_port_without_probe_passes():
    outcome = run("tcp", {"host": "localhost", "port": "5432"}, {})
    assert outcome.status == "passed"
    assert "accepts connections" in outcome.message


def test_closed_port_fails_fast_with_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    started = time.monotonic()
    outcome = run("tcp", {"host": "127.0.0.1", "port": str(free_port)}, {})
    assert outcome.status == "failed"
    assert outcome.message == f"cannot connect to 127.0.0.1:{free_port}: connection refused"
    assert time.monotonic() - started < 1


def test_redis_probe_against_postgres_says_what_it_heard():
    outcome = run("tcp", {"host": "127.0.0.1", "port": "5432", "probe": "redis"}, {"x": "y"})
    assert outcome.status in ("failed",)
    assert "PING" in outcome.message


def test_redis_requiring_a_password_counts_as_alive():
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def fake_protected_redis():
        conn, _ = listener.accept()
        conn.recv(64)
        conn.sendall(b"-NOAUTH Authentication required.\r\n")
        conn.close()

    threading.Thread(target=fake_protected_redis, daemon=True).start()
    try:
        outcome = run("tcp", {"host": "127.0.0.1", "port": str(listener.getsockname()[1]), "probe": "redis"}, {})
    finally:
        listener.close()
    assert outcome.status == "passed"
    assert "requires a password (NOAUTH)" in outcome.message


@pytest.mark.parametrize("host", ["127.0.0.2", "::ffff:127.0.0.2"])
def test_denied_loopback_address_is_refused_without_connecting(settings, host):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, ipaddress.ip_network("127.0.0.2/32")]
    outcome = run("tcp", {"host": host, "port": "6379", "probe": "redis"}, {})
    assert outcome.status == "error"
    assert "is in a denied network (127.0.0.2/32)" in outcome.message
    assert "connect_ms" not in outcome.evidence


def test_a_db_host_variable_with_a_port_probes_that_port():
    """A Postgres on another port is `db_host: name:port`; the suggested check's 5432 yields."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    on_5432 = run("tcp", {"host": "{{ db_host }}", "port": "5432", "probe": "postgres"}, {"db_host": "127.0.0.1:5432"})
    elsewhere = run("tcp", {"host": "{{ db_host }}", "port": "5432", "probe": "postgres"}, {"db_host": f"127.0.0.1:{free_port}"})

    assert on_5432.status == "passed", on_5432.message
    assert elsewhere.status == "failed"
    assert f"127.0.0.1:{free_port}" in elsewhere.message
