"""dns checks against a tiny authoritative DNS server on 127.0.0.1."""

import ipaddress

import pytest

from checklists.verifications.registry import run
from tests.servers import dns_server  # noqa: F401


@pytest.fixture
def zone(dns_server):  # noqa: F811
    return dns_server({
        ("app.example.test", "A"): ["127.0.0.10", "127.0.0.11"],
        ("app.example.test", "AAAA"): ["fd12::10"],
        ("www.example.test", "CNAME"): ["app.example.test."],
        ("example.test", "MX"): ["10 mail.example.test.", "20 backup-mail.example.test."],
        ("example.test", "TXT"): ['"v=spf1 -all"'],
    })


def check(zone, **params):
    return run("dns", {"server": zone.address, **params}, {})


def test_record_resolves_and_lists_its_values(zone):
    outcome = check(zone, name="app.example.test")
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["answers"] == ["127.0.0.10", "127.0.0.11"]
    assert outcome.evidence["ttl"] == 300


def test_expected_values_match_in_any_order(zone):
    outcome = check(zone, name="app.example.test", expect="127.0.0.11, 127.0.0.10")
    assert outcome.status == "passed", outcome.message


def test_unexpected_values_fail_and_show_the_difference(zone):
    outcome = check(zone, name="app.example.test", expect="127.0.0.10,127.0.0.99")
    assert outcome.status == "failed"
    assert outcome.message == (
        "app.example.test A is 127.0.0.10, 127.0.0.11, expected 127.0.0.10, 127.0.0.99"
    )
    assert outcome.evidence["missing"] == ["127.0.0.99"]
    assert outcome.evidence["unexpected"] == ["127.0.0.11"]


def test_nonexistent_name_fails_with_nxdomain(zone):
    outcome = check(zone, name="nope.example.test")
    assert outcome.status == "failed"
    assert "nope.example.test does not exist (NXDOMAIN" in outcome.message


def test_name_without_that_record_type_fails(zone):
    outcome = check(zone, name="www.example.test", type="A")
    assert outcome.status == "failed" and "has no A record" in outcome.message


@pytest.mark.parametrize(
    "rdtype, name, expect",
    [
        ("AAAA", "app.example.test", "FD12:0:0::10"),
        ("CNAME", "www.example.test", "APP.example.test."),
        ("MX", "example.test", "20 backup-mail.example.test,10 mail.example.test"),
        ("TXT", "example.test", '"v=spf1 -all"'),
    ],
)
def test_other_record_types_compare_in_their_normal_form(zone, rdtype, name, expect):
    outcome = check(zone, name=name, type=rdtype, expect=expect)
    assert outcome.status == "passed", outcome.message


def test_silent_resolver_ends_at_the_timeout(settings):
    import socket
    import time

    # A UDP socket that receives queries and never answers.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 1
    started = time.monotonic()
    try:
        outcome = run("dns", {"name": "app.example.test", "server": f"127.0.0.1:{silent.getsockname()[1]}"}, {})
    finally:
        silent.close()
    assert outcome.status == "failed"
    assert "no DNS answer for app.example.test" in outcome.message
    assert time.monotonic() - started < 3


def test_resolver_in_a_denied_network_is_refused(settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, ipaddress.ip_network("127.0.0.2/32")]
    outcome = run("dns", {"name": "example.test", "server": "127.0.0.2"}, {})
    assert outcome.status == "error"
    assert outcome.message == "127.0.0.2 is in a denied network (127.0.0.2/32)"


def test_a_host_variable_with_a_port_looks_up_the_name_alone(zone):
    outcome = run("dns", {"name": "{{ host }}", "server": zone.address}, {"host": "app.example.test:8443"})

    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["name"] == "app.example.test"


def test_without_a_server_the_operators_pinned_resolver_answers(zone, settings):
    settings.DEPLOYCHECK_CHECK_NAMESERVERS = [zone.address]

    outcome = run("dns", {"name": "www.example.test", "type": "CNAME"}, {})

    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["server"] == zone.address
