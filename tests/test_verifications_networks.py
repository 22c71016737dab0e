"""DEPLOYCHECK_CHECK_DENY_NETS=private and DEPLOYCHECK_CHECK_ALLOW_NETS, through registry.run.

Every server here lives on 127.0.0.1. The `private` rule is proved by aiming each check kind at
loopback; the metadata rule by a local DNS server that answers 169.254.169.254, which the check
must refuse before any connect (the `connects` fixture records, and refuses, anything that is
not 127.0.0.0/8), and by the address-classification function, which sends nothing.
"""

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from checklists.verifications.net import Denied, check_address
from checklists.verifications.registry import run
from tests.servers import (  # noqa: F401
    LOOPBACK,
    ca_bundle,
    connects,
    dns_server,
    free_port,
    http_server,
    redirect,
    resolver,
    tcp_server,
    test_ca,
    tls_server,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
HINT = "allow it with DEPLOYCHECK_CHECK_ALLOW_NETS"
REFUSED = f"127.0.0.1 is in a denied network (private); {HINT}"
METADATA = "meta.test resolves to 169.254.169.254, which is in a denied network (169.254.0.0/16)"
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
KINDS = ["http", "headers", "redirect", "tls", "dns", "tcp", "tcp-redis", "tcp-postgres"]


@pytest.fixture
def private(settings):
    """Production's choice: checks may not reach private networks unless allowed."""
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, "private"]
    settings.DEPLOYCHECK_CHECK_ALLOW_NETS = []

    def allow(*entries: str):
        settings.DEPLOYCHECK_CHECK_ALLOW_NETS = list(entries)

    return allow


@pytest.fixture
def targets(http_server, test_ca, ca_bundle, dns_server, tcp_server):  # noqa: F811
    """A live service of every kind on 127.0.0.1, and the parameters aiming each check at it."""
    http_server.route("/", 200, "hello", SECURITY_HEADERS)
    # Plain HTTP sends the client to HTTPS on whichever host name it asked for.
    http_server.routes["/plain"] = lambda h: h.reply(301, "", {"Location": f"https://{h.headers['Host'].split(':')[0]}/"})
    secure = tls_server(test_ca, "127.0.0.1", "app.test")
    handshakes, finish = [], secure.finish_request
    secure.finish_request = lambda request, peer: (handshakes.append(peer), finish(request, peer))
    names = dns_server({("www.example.test", "A"): ["127.0.0.1"]})
    redis, postgres = tcp_server(b"+PONG\r\n"), tcp_server(b"N")

    def params(kind: str, host: str = LOOPBACK) -> dict:
        return {
            "http": {"url": http_server.url("/", host=host), "contains": "hello"},
            "headers": {"url": http_server.url("/", host=host)},
            "redirect": {"url": http_server.url("/plain", host=host)},
            "tls": {"host": host, "port": str(secure.port)},
            "dns": {"name": "www.example.test", "server": f"{host}:{names.port}", "expect": "127.0.0.1"},
            "tcp": {"host": host, "port": str(redis.port)},
            "tcp-redis": {"host": host, "port": str(redis.port), "probe": "redis"},
            "tcp-postgres": {"host": host, "port": str(postgres.port), "probe": "postgres"},
        }[kind]

    def reached() -> int:
        """How many requests, handshakes, queries and connections the servers have seen."""
        return len(http_server.seen) + len(handshakes) + len(names.queries) + redis.accepted + postgres.accepted

    params.reached = reached
    yield params
    secure.stop()


def kind_of(name: str) -> str:
    return name.split("-", 1)[0]


# --- private stops every kind ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_private_stops_every_kind_at_loopback(private, targets, connects, kind):  # noqa: F811
    outcome = run(kind_of(kind), targets(kind), {})

    assert outcome.status == "error"
    assert outcome.message == REFUSED
    assert outcome.evidence["denied_by"] == "private"
    assert outcome.evidence["denied_network"] == "127.0.0.0/8"
    assert connects == []  # refused before any socket connects, resolver included
    assert targets.reached() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_allowing_the_loopback_network_lets_every_kind_through(private, targets, kind):  # noqa: F811
    private("127.0.0.1/32")
    outcome = run(kind_of(kind), targets(kind), {})
    assert outcome.status == "passed", outcome.message
    assert wait_for(lambda: targets.reached() > 0)


@pytest.mark.parametrize("kind", KINDS)
def test_allowing_a_host_name_lets_that_name_through_and_no_other(private, targets, resolver, kind):  # noqa: F811
    resolver({("app.test", "A"): ["127.0.0.1"], ("other.test", "A"): ["127.0.0.1"]})
    private("App.Test.")  # compared without case or the final dot

    allowed = run(kind_of(kind), targets(kind, host="app.test"), {})
    assert allowed.status == "passed", allowed.message
    assert wait_for(lambda: targets.reached() > 0)

    before = targets.reached()
    other = run(kind_of(kind), targets(kind, host="other.test"), {})
    assert other.status == "error"
    assert other.message == f"other.test resolves to 127.0.0.1, which is in a denied network (private); {HINT}"
    literal = run(kind_of(kind), targets(kind), {})
    assert literal.message == REFUSED
    assert targets.reached() == before


def test_ipv4_mapped_loopback_is_private_too(private, tcp_server, connects):  # noqa: F811
    redis = tcp_server(b"+PONG\r\n")
    outcome = run("tcp", {"host": "::ffff:127.0.0.1", "port": str(redis.port), "probe": "redis"}, {})
    assert outcome.status == "error"
    assert outcome.message == f"::ffff:127.0.0.1 (127.0.0.1) is in a denied network (private); {HINT}"
    assert connects == [] and redis.accepted == 0


# --- redirects ------------------------------------------------------------------------------


def test_redirect_from_an_allowed_host_to_a_loopback_hop_is_refused_at_the_hop(
    private, resolver, http_server, connects  # noqa: F811
):
    resolver({("app.test", "A"): ["127.0.0.1"]})
    private("app.test")
    http_server.routes["/start"] = redirect(http_server.url("/inner"))
    http_server.route("/inner", 200, "internal only")

    outcome = run("http", {"url": http_server.url("/start", host="app.test")}, {})

    assert outcome.status == "error"
    assert outcome.message == REFUSED
    assert outcome.evidence["hops"] == [
        {"url": http_server.url("/start", host="app.test"), "status": 302, "location": http_server.url("/inner")}
    ]
    assert [seen["path"] for seen in http_server.seen] == ["/start"]


def test_redirect_from_an_allowed_network_to_another_loopback_address_is_refused(
    private, http_server, connects  # noqa: F811
):
    private("127.0.0.1/32")
    http_server.routes["/start"] = redirect(http_server.url("/", host="127.0.0.2"))

    outcome = run("http", {"url": http_server.url("/start")}, {})

    assert outcome.status == "error"
    assert outcome.message == f"127.0.0.2 is in a denied network (private); {HINT}"
    assert [hop["status"] for hop in outcome.evidence["hops"]] == [302]
    assert all(host != "127.0.0.2" for host, _, _ in connects), connects


def test_headers_check_follows_redirects_through_the_same_rule(private, http_server):  # noqa: F811
    private("127.0.0.1/32")
    http_server.routes["/"] = redirect(http_server.url("/", host="127.0.0.3"))
    outcome = run("headers", {"url": http_server.url("/")}, {})
    assert outcome.status == "error"
    assert outcome.message == f"127.0.0.3 is in a denied network (private); {HINT}"


# --- the metadata networks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, params",
    [
        ("http", {"url": "http://meta.test:8080/latest/meta-data/"}),
        ("headers", {"url": "http://meta.test:8080/"}),
        ("redirect", {"url": "http://meta.test:8080/"}),
        ("tls", {"host": "meta.test", "port": "8443"}),
        ("tcp", {"host": "meta.test", "port": "8080", "probe": "redis"}),
        ("dns", {"name": "www.example.test", "server": "meta.test:5353"}),
    ],
)
def test_metadata_range_stays_denied_even_when_allowed(private, resolver, connects, kind, params):  # noqa: F811
    names = resolver({("meta.test", "A"): ["169.254.169.254"]})
    private("169.254.0.0/16", "169.254.169.254/32", "meta.test", "fd00:ec2::/32", "0.0.0.0/0")

    outcome = run(kind, params, {})

    assert outcome.status == "error"
    assert outcome.message == METADATA
    assert "ALLOW_NETS" not in outcome.message  # nothing can lift it, so no hint
    assert outcome.evidence["denied_by"] == "169.254.0.0/16"
    assert ("meta.test", "A") in names.queries  # resolved by our DNS server ...
    assert all(c[2] != socket.SOCK_STREAM for c in connects), connects  # ... and no TCP connect anywhere


def test_metadata_range_stays_denied_without_private(settings, resolver, connects):  # noqa: F811
    # Allowing the metadata range cannot open it even when the operator denies nothing else.
    resolver({("meta.test", "A"): ["169.254.169.254"]})
    settings.DEPLOYCHECK_CHECK_DENY_NETS = []
    settings.DEPLOYCHECK_CHECK_ALLOW_NETS = ["169.254.0.0/16", "meta.test"]
    outcome = run("http", {"url": "http://meta.test:80/"}, {})
    assert outcome.message == METADATA
    assert all(c[2] != socket.SOCK_STREAM for c in connects), connects


@pytest.mark.parametrize(
    "address, shown",
    [
        ("169.254.169.254", "169.254.169.254 is in a denied network (169.254.0.0/16)"),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254 (169.254.169.254) is in a denied network (169.254.0.0/16)"),
        ("::ffff:a9fe:a9fe", "::ffff:a9fe:a9fe (169.254.169.254) is in a denied network (169.254.0.0/16)"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe is in a denied network (169.254.0.0/16)"),
        ("fd00:ec2::254", "fd00:ec2::254 is in a denied network (fd00:ec2::/32)"),
    ],
)
def test_allow_list_never_lifts_the_metadata_networks(private, address, shown):
    # Classification only: these addresses are never contacted, even by a test.
    private("169.254.0.0/16", "fd00:ec2::/32", "fc00::/7", "::/0", "0.0.0.0/0", "meta.test")
    with pytest.raises(Denied) as refused:
        check_address(ipaddress.ip_address(address), address)
    assert str(refused.value) == shown
    with pytest.raises(Denied):
        check_address(ipaddress.ip_address(address), "meta.test")


# --- what `private` covers (classification only, no traffic) --------------------------------


@pytest.mark.parametrize(
    "address, network",
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.255.255.254", "127.0.0.0/8"),
        ("::1", "::1/128"),
        ("10.1.2.3", "10.0.0.0/8"),
        ("172.16.0.1", "172.16.0.0/12"),
        ("172.31.255.255", "172.16.0.0/12"),
        ("192.168.1.1", "192.168.0.0/16"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("100.127.255.255", "100.64.0.0/10"),
        ("169.254.10.1", "169.254.0.0/16"),
        ("fe80::1", "fe80::/10"),
        ("fc00::1", "fc00::/7"),
        ("fd12:3456::1", "fc00::/7"),
        ("::ffff:10.0.0.1", "10.0.0.0/8"),
        ("::ffff:192.168.0.1", "192.168.0.0/16"),
        ("::ffff:100.64.0.1", "100.64.0.0/10"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("2002:7f00:1::", "127.0.0.0/8"),  # 6to4 wrapping of 127.0.0.1
        ("64:ff9b::a00:1", "10.0.0.0/8"),  # NAT64 wrapping of 10.0.0.1
    ],
)
def test_private_covers_every_range_in_every_spelling(private, address, network):
    with pytest.raises(Denied) as refused:
        check_address(ipaddress.ip_address(address), address)
    assert refused.value.evidence["denied_network"] == network
    if network != "169.254.0.0/16":
        assert str(refused.value).endswith(f"is in a denied network (private); {HINT}")


@pytest.mark.parametrize(
    "address", ["192.0.2.1", "198.51.100.7", "172.32.0.1", "100.128.0.1", "11.0.0.1", "2001:db8::1", "fec0::1"]
)
def test_public_addresses_are_not_private(private, address):
    # Documentation and just-outside-the-range addresses, classified without any traffic.
    assert check_address(ipaddress.ip_address(address), address) == ipaddress.ip_address(address)


def test_allow_list_lifts_private_by_network_in_every_spelling(private):
    private("10.0.0.0/8", "fd00:1::/32")
    for address in ("10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203", "fd00:1::5"):
        check_address(ipaddress.ip_address(address), address)
    with pytest.raises(Denied, match=r"192\.168\.0\.1 is in a denied network \(private\)"):
        check_address(ipaddress.ip_address("192.168.0.1"), "192.168.0.1")


def test_allow_list_lifts_an_operator_network_too(settings):
    # The allow list is checked after the whole deny list, CIDR entries included.
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.DEPLOYCHECK_CHECK_ALLOW_NETS = ["127.0.0.5/32"]
    assert str(check_address(ipaddress.ip_address("127.0.0.5"))) == "127.0.0.5"
    with pytest.raises(Denied, match=r"^127\.0\.0\.6 is in a denied network \(127\.0\.0\.0/8\)$"):
        check_address(ipaddress.ip_address("127.0.0.6"))


def test_settings_may_be_strings_and_are_read_at_call_time(settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = ["127.0.0.9/32"]
    with pytest.raises(Denied, match=r"\(127\.0\.0\.9/32\)$"):
        check_address(ipaddress.ip_address("127.0.0.9"))
    settings.DEPLOYCHECK_CHECK_DENY_NETS = ["PRIVATE"]
    with pytest.raises(Denied, match=r"\(private\)"):
        check_address(ipaddress.ip_address("127.0.0.9"))
    settings.DEPLOYCHECK_CHECK_ALLOW_NETS = "127.0.0.0/24, db.internal"
    check_address(ipaddress.ip_address("127.0.0.9"))
    check_address(ipaddress.ip_address("10.9.9.9"), "DB.internal")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0", "not a host", "fe80::zz"])
def test_a_wrong_allow_entry_is_a_clear_configuration_error(private, entry):
    private(entry)
    outcome = run("tcp", {"host": "127.0.0.1", "port": str(free_port())}, {})
    assert outcome.status == "error"
    assert outcome.message == f"DEPLOYCHECK_CHECK_ALLOW_NETS: {entry!r} is neither a network nor a host name"


def test_a_wrong_deny_entry_is_a_clear_configuration_error(settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = ["privat"]
    outcome = run("tcp", {"host": "127.0.0.1", "port": str(free_port())}, {})
    assert outcome.status == "error"
    assert outcome.message.startswith("DEPLOYCHECK_CHECK_DENY_NETS: 'privat' is not a network")


# --- the environment ------------------------------------------------------------------------


def _settings_from_env(**env) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print([str(n) for n in s.DEPLOYCHECK_CHECK_DENY_NETS]); print(s.DEPLOYCHECK_CHECK_ALLOW_NETS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "deploycheck.settings", **env},
    )


def test_environment_takes_the_word_private_and_allow_entries():
    finished = _settings_from_env(
        DEPLOYCHECK_CHECK_DENY_NETS="Private, 192.0.2.0/24",
        DEPLOYCHECK_CHECK_ALLOW_NETS="10.1.0.0/16, db.internal",
    )
    assert finished.returncode == 0, finished.stderr
    deny, allow = finished.stdout.splitlines()[-2:]
    assert deny == "['169.254.0.0/16', 'fd00:ec2::/32', 'private', '192.0.2.0/24']"
    assert allow == "['10.1.0.0/16', 'db.internal']"


def test_environment_refuses_a_deny_entry_that_is_not_a_network():
    finished = _settings_from_env(DEPLOYCHECK_CHECK_DENY_NETS="privat")
    assert finished.returncode != 0
    assert "DEPLOYCHECK_CHECK_DENY_NETS: 'privat' is not a network" in finished.stderr
