"""Network hygiene: every address gets its turn within one deadline; bodies stay raw and capped.

Names resolve through a local DNS server to two loopback addresses: 127.0.0.3 first, where
nothing listens (refused) or where a full accept queue never answers (silent), then 127.0.0.1,
where the real server is. Compressed answers come from a local server that ignores the
`Accept-Encoding: identity` the checks send.
"""

import gzip
import time
import tracemalloc

import pytest

from checklists.verifications import net
from checklists.verifications.registry import run
from tests.servers import (  # noqa: F401
    blackhole,
    ca_bundle,
    free_port,
    gzip_bomb,
    http_server,
    ordered_dns_server,
    tcp_server,
    test_ca,
    tls_server,
)

FIRST, SECOND = "127.0.0.3", "127.0.0.1"
MIB = 1024 * 1024


@pytest.fixture
def two_addresses(settings, ordered_dns_server):  # noqa: F811
    """two.test resolves to 127.0.0.3, then 127.0.0.1 (in that order), through a local DNS server."""
    server = ordered_dns_server({("two.test", "A"): [FIRST, SECOND]})
    settings.DEPLOYCHECK_CHECK_NAMESERVERS = [server.address]
    return "two.test"


@pytest.fixture
def secure(test_ca, ca_bundle):  # noqa: F811
    server = tls_server(test_ca, "two.test")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    body = gzip_bomb(50 * MIB)
    assert len(body) < 100 * 1024  # ~50 KB on the wire, 50 MB once inflated
    return body


# --- every address within one deadline ------------------------------------------------------


def test_resolver_answers_in_the_order_the_tests_rely_on(two_addresses):
    for _ in range(5):
        assert [str(a) for a in net.resolve(two_addresses, net.Deadline(2))] == [FIRST, SECOND]


def test_tls_tries_the_next_address_when_the_first_refuses(two_addresses, secure):
    outcome = run("tls", {"host": two_addresses, "port": str(secure.port)}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["address"] == SECOND
    assert outcome.evidence["tried"] == [{"address": FIRST, "problem": "connection refused"}]


def test_tls_splits_the_deadline_when_the_first_address_is_silent(settings, two_addresses, secure, blackhole):  # noqa: F811
    blackhole(FIRST, secure.port)  # 127.0.0.3 on the same port takes the SYN and never answers
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 2
    started = time.monotonic()
    outcome = run("tls", {"host": two_addresses, "port": str(secure.port)}, {})
    took = time.monotonic() - started
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["address"] == SECOND
    assert outcome.evidence["tried"] == [{"address": FIRST, "problem": "timed out"}]
    assert 0.9 <= took < 1.9  # half of the deadline for 127.0.0.3, the rest for 127.0.0.1


def test_tls_with_every_address_refusing_names_each(two_addresses):
    port = free_port()
    outcome = run("tls", {"host": two_addresses, "port": str(port)}, {})
    assert outcome.status == "failed"
    assert outcome.message == (
        f"cannot connect to two.test:{port}: {FIRST}: connection refused; {SECOND}: connection refused"
    )


def test_tls_with_every_address_silent_ends_at_the_deadline(settings, two_addresses, blackhole):  # noqa: F811
    port = blackhole(FIRST).port
    blackhole(SECOND, port)
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 1
    started = time.monotonic()
    outcome = run("tls", {"host": two_addresses, "port": str(port)}, {})
    assert outcome.status == "failed"
    assert outcome.message == "no connection to two.test:%d within 1 s" % port
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("probe, reply", [("none", b""), ("redis", b"+PONG\r\n"), ("postgres", b"N")])
def test_tcp_connect_splits_the_deadline_across_addresses(settings, two_addresses, tcp_server, blackhole, probe, reply):  # noqa: F811
    server = tcp_server(reply, SECOND)
    blackhole(FIRST, server.port)
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 2
    started = time.monotonic()
    outcome = run("tcp", {"host": two_addresses, "port": str(server.port), "probe": probe}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["address"] == SECOND
    assert 0.9 <= time.monotonic() - started < 1.9


def test_http_connects_through_the_same_split(settings, two_addresses, http_server, blackhole):  # noqa: F811
    http_server.route("/", 200, "second address")
    blackhole(FIRST, http_server.port)
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 2
    outcome = run("http", {"url": f"http://two.test:{http_server.port}/", "contains": "second address"}, {})
    assert outcome.status == "passed", outcome.message
    assert http_server.seen[-1]["headers"]["Host"] == f"two.test:{http_server.port}"


def test_connect_helper_reports_each_refusing_address(two_addresses):
    port = free_port()
    with pytest.raises(net.Unreachable) as refused, net.Deadline(2) as deadline:
        net.connect(two_addresses, port, deadline)
    assert str(refused.value) == (
        f"cannot connect to two.test:{port}: {FIRST}: connection refused; {SECOND}: connection refused"
    )
    assert refused.value.evidence["tried"] == [FIRST, SECOND]


# --- identity, raw bytes and the body cap ---------------------------------------------------


@pytest.mark.parametrize(
    "kind, path", [("http", "/"), ("headers", "/"), ("redirect", "/"), ("http", "/moved")]
)
def test_every_fetch_asks_for_identity(http_server, kind, path):  # noqa: F811
    http_server.route("/", 200, "ok", {"Location": "https://127.0.0.1/"})
    http_server.route("/moved", 302, "", {"Location": "/"})
    run(kind, {"url": http_server.url(path)}, {})
    assert http_server.seen
    assert {seen["headers"]["Accept-Encoding"] for seen in http_server.seen} == {"identity"}


def test_a_caller_cannot_ask_for_compression(http_server):  # noqa: F811
    http_server.route("/", 200, "ok")
    with net.Deadline(5) as deadline:
        net.fetch(http_server.url("/"), deadline, headers={"accept-encoding": "gzip, br"})
    assert http_server.seen[-1]["headers"]["Accept-Encoding"] == "identity"


def test_a_gzip_bomb_is_read_raw_and_never_inflated(http_server, bomb):  # noqa: F811
    http_server.route("/", 200, bomb, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    tracemalloc.start()
    try:
        outcome = run("http", {"url": http_server.url("/"), "contains": "needle"}, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outcome.status == "failed"
    assert "the answer is gzip-encoded although the check asked for identity; it is not decoded" in outcome.message
    assert outcome.evidence["content_encoding"] == "gzip"
    assert outcome.evidence["body_bytes"] == len(bomb)  # the bytes on the wire, not 50 MB
    assert outcome.evidence["body_truncated"] is False
    assert outcome.evidence["body_excerpt"] == f"[{len(bomb)} bytes of gzip-encoded body, not decoded]"
    assert peak < 8 * MIB, f"peak {peak} bytes while reading a {len(bomb)}-byte answer"


def test_a_gzip_answer_still_passes_on_its_status(http_server, bomb):  # noqa: F811
    http_server.route("/", 200, bomb, {"Content-Encoding": "gzip"})
    outcome = run("http", {"url": http_server.url("/")}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["body_bytes"] == len(bomb)


def test_fetch_returns_the_compressed_bytes_as_sent(http_server):  # noqa: F811
    body = gzip.compress(b"hello " * 1000)
    http_server.route("/", 200, body, {"Content-Encoding": "gzip"})
    with net.Deadline(5) as deadline:
        answer = net.fetch(http_server.url("/"), deadline)
    assert answer.body == body
    assert answer.body[:2] == b"\x1f\x8b"


def test_a_big_identity_body_is_capped(http_server):  # noqa: F811
    http_server.route("/", 200, b"x" * (3 * MIB))
    outcome = run("http", {"url": http_server.url("/"), "contains": "needle"}, {})
    assert outcome.status == "failed"
    assert "the answer does not contain 'needle' in its first 1 MiB" in outcome.message
    assert outcome.evidence["body_bytes"] == net.BODY_LIMIT == MIB
    assert outcome.evidence["body_truncated"] is True


def test_a_compressed_body_past_the_cap_stops_at_the_cap_in_raw_bytes(http_server):  # noqa: F811
    import os

    noise = gzip.compress(os.urandom(2 * MIB), compresslevel=1)  # random data does not shrink
    http_server.route("/", 200, noise, {"Content-Encoding": "gzip"})
    with net.Deadline(5) as deadline:
        answer = net.fetch(http_server.url("/"), deadline)
    assert answer.truncated is True
    assert answer.body == noise[: net.BODY_LIMIT]
