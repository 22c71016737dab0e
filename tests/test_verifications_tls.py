"""tls checks against a real TLS server on 127.0.0.1 with certificates from a test CA."""

import datetime as dt
import ipaddress

import pytest

from checklists.verifications.registry import run
from tests.servers import ca_bundle, test_ca, tls_server  # noqa: F401

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def serve(test_ca, ca_bundle):  # noqa: F811
    servers = []

    def start(*names, **validity):
        server = tls_server(test_ca, *names, **validity)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def check(server, host="localhost", **extra):
    return run("tls", {"host": host, "port": str(server.port), **extra}, {})


def test_valid_certificate_passes_with_its_facts(serve):
    server = serve("localhost", not_after=NOW + dt.timedelta(days=90))
    outcome = check(server)
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["verified"] is True
    assert outcome.evidence["days_left"] in (89, 90)
    assert outcome.evidence["sans"] == ["localhost"]
    assert outcome.evidence["issuer"]
    assert outcome.evidence["error"] is None
    assert f"valid for another {outcome.evidence['days_left']} days" in outcome.message


def test_certificate_expiring_in_five_days_fails_min_days(serve):
    server = serve("localhost", not_after=NOW + dt.timedelta(days=5))
    outcome = check(server, min_days="30")
    assert outcome.status == "failed"
    assert outcome.evidence["days_left"] in (4, 5)
    assert outcome.evidence["verified"] is True
    assert f"expires in {outcome.evidence['days_left']} days, fewer than 30" in outcome.message


def test_same_certificate_passes_a_lower_threshold(serve):
    server = serve("localhost", not_after=NOW + dt.timedelta(days=5))
    assert check(server, min_days="3").status == "passed"


def test_expired_certificate_fails_and_says_so(serve):
    server = serve("localhost", not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=3, hours=1))
    outcome = check(server)
    assert outcome.status == "failed"
    assert "certificate expired 3 days ago" in outcome.message
    assert outcome.evidence["days_left"] == -3
    assert outcome.evidence["verified"] is False
    assert "expired" in outcome.evidence["error"]


def test_certificate_for_another_host_fails_and_names_it(serve):
    server = serve("other.example")
    outcome = check(server)
    assert outcome.status == "failed"
    assert "certificate is for other.example, not localhost" in outcome.message
    assert outcome.evidence["sans"] == ["other.example"]
    assert outcome.evidence["verified"] is False


def test_untrusted_issuer_fails_with_the_reason(serve, settings):
    server = serve("localhost")
    settings.DEPLOYCHECK_CA_BUNDLE = ""
    outcome = check(server)
    assert outcome.status == "failed"
    assert "certificate is not trusted" in outcome.message
    assert "deploycheck test CA" in outcome.message or outcome.evidence["issuer"] in outcome.message


def test_ip_address_certificate_verifies_for_the_ip(serve):
    server = serve("127.0.0.1")
    outcome = check(server, host="127.0.0.1")
    assert outcome.status == "passed", outcome.message


def test_plain_tcp_service_is_a_failed_handshake_not_a_crash(settings):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_garbage():
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        outcome = run("tls", {"host": "127.0.0.1", "port": str(listener.getsockname()[1])}, {})
    finally:
        listener.close()
    assert outcome.status == "failed"
    assert "TLS handshake failed" in outcome.message


def test_tls_to_a_denied_address_is_refused(settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, ipaddress.ip_network("127.0.0.2/32")]
    outcome = run("tls", {"host": "127.0.0.2"}, {})
    assert outcome.status == "error"
    assert outcome.message == "127.0.0.2 is in a denied network (127.0.0.2/32)"


def test_a_host_variable_with_a_port_is_checked_on_that_port(serve):
    """CONTRACT.md: `host` may be `name:port`, and the tls check honours the port."""
    server = serve("localhost")

    outcome = run("tls", {"host": "{{ host }}"}, {"host": f"localhost:{server.port}"})

    assert outcome.status == "passed", outcome.message
    assert f"localhost:{server.port}" in outcome.message


def test_a_host_variable_whose_port_is_not_a_number_is_a_clear_error(serve):
    outcome = run("tls", {"host": "{{ host }}"}, {"host": "localhost:https"})

    assert outcome.status == "error"
    assert "not host[:port]" in outcome.message
