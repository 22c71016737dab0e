"""http, headers and redirect checks against real servers on 127.0.0.1, through registry.run."""

import ipaddress
import time

import pytest

from checklists.verifications.net import Denied, check_address
from checklists.verifications.registry import run
from tests.servers import (  # noqa: F401
    ca_bundle,
    dns_server,
    hang,
    http_server,
    redirect,
    resolver,
    slow,
    test_ca,
    tls_server,
    trickle,
    trickle_headers,
)

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


@pytest.fixture
def deny(settings):
    def add(cidr: str):
        settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, ipaddress.ip_network(cidr)]

    return add


# --- http -----------------------------------------------------------------------------------


def test_healthy_endpoint_passes_with_status_and_latency(http_server):  # noqa: F811
    http_server.route("/health", 200, "ok")
    outcome = run("http", {"url": http_server.url("/health"), "contains": "ok"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["status_code"] == 200
    assert outcome.evidence["final_url"] == http_server.url("/health")
    assert outcome.evidence["latency_ms"] >= 0
    assert outcome.duration_ms >= outcome.evidence["latency_ms"]


def test_server_error_fails_and_names_the_status(http_server):  # noqa: F811
    http_server.route("/health", 500, "database down")
    outcome = run("http", {"url": http_server.url("/health")}, {})
    assert outcome.status == "failed"
    assert "answered 500, expected 200" in outcome.message
    assert outcome.evidence["status_code"] == 500
    assert outcome.evidence["body_excerpt"] == "database down"


def test_status_class_accepts_any_code_in_it(http_server):  # noqa: F811
    http_server.route("/created", 201, "")
    assert run("http", {"url": http_server.url("/created"), "status": "2xx"}, {}).status == "passed"
    assert run("http", {"url": http_server.url("/created"), "status": "200"}, {}).status == "failed"


def test_slow_answer_fails_max_ms(http_server):  # noqa: F811
    http_server.routes["/slow"] = slow(http_server, 0.3)
    outcome = run("http", {"url": http_server.url("/slow"), "max_ms": "100"}, {})
    assert outcome.status == "failed"
    assert "more than max_ms 100" in outcome.message
    assert outcome.evidence["latency_ms"] >= 300


def test_hanging_server_ends_at_the_check_timeout(http_server):  # noqa: F811
    http_server.routes["/hang"] = hang(http_server)
    started = time.monotonic()
    outcome = run("http", {"url": http_server.url("/hang"), "timeout": "2"}, {})
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert "within 2 s" in outcome.message
    assert 1.9 <= elapsed < 5


def test_trickling_body_cannot_outlast_the_deadline(http_server):  # noqa: F811
    # One byte every 0.2 s never trips a per-read timeout; only a total deadline stops it.
    http_server.routes["/trickle"] = trickle(http_server, total=1000, every=0.2)
    started = time.monotonic()
    outcome = run("http", {"url": http_server.url("/trickle"), "timeout": "2"}, {})
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert "within 2 s" in outcome.message
    assert outcome.evidence["status_code"] == 200
    assert 1.9 <= elapsed < 5


def test_trickling_headers_cannot_outlast_the_deadline(http_server):  # noqa: F811
    # The header reader is library code we cannot loop around: the deadline's watchdog
    # shuts the socket under it.
    http_server.routes["/loris"] = trickle_headers(http_server, every=0.2)
    started = time.monotonic()
    outcome = run("http", {"url": http_server.url("/loris"), "timeout": "2"}, {})
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert "within 2 s" in outcome.message
    assert 1.9 <= elapsed < 5


def test_redirect_chain_is_followed_and_reported(http_server):  # noqa: F811
    http_server.routes["/old"] = redirect("/older", 301)
    http_server.routes["/older"] = redirect(http_server.url("/new"), 302)
    http_server.route("/new", 200, "welcome")
    outcome = run("http", {"url": http_server.url("/old"), "contains": "welcome"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["final_url"] == http_server.url("/new")
    assert [hop["status"] for hop in outcome.evidence["hops"]] == [301, 302]
    assert "after 2 redirects" in outcome.message


def test_endless_redirects_stop_at_the_hop_limit(http_server):  # noqa: F811
    http_server.routes["/loop"] = redirect("/loop")
    outcome = run("http", {"url": http_server.url("/loop")}, {})
    assert outcome.status == "failed"
    assert "more than 10 redirects" in outcome.message


def test_missing_text_fails_with_an_excerpt_of_what_came_back(http_server):  # noqa: F811
    http_server.route("/", 200, "<h1>Maintenance</h1> back soon")
    outcome = run("http", {"url": http_server.url("/"), "contains": "Welcome"}, {})
    assert outcome.status == "failed"
    assert "does not contain 'Welcome'" in outcome.message
    assert "Maintenance" in outcome.evidence["body_excerpt"]


def test_secret_variables_never_reach_message_or_evidence(http_server):  # noqa: F811
    token = "tok-3f9a-very-secret"
    # The server echoes the query string, so the token comes back in the body excerpt, in the
    # final URL and in the message unless it is redacted.
    http_server.routes["/api"] = lambda h: h.reply(200, f"you asked {h.path}")
    outcome = run(
        "http",
        {"url": "{{ base }}/api?token={{token}}", "contains": "nope"},
        {"base": http_server.url("").rstrip("/"), "token": token},
        secrets=[token],
    )
    assert outcome.status == "failed"
    assert http_server.seen[-1]["path"] == f"/api?token={token}"  # the server did get it
    flat = repr(outcome)
    assert token not in flat
    assert "[secret]" in outcome.evidence["final_url"]
    assert "[secret]" in outcome.evidence["body_excerpt"]


def test_secret_is_redacted_from_errors_too(http_server):  # noqa: F811
    token = "hunter2-hunter2"
    outcome = run("http", {"url": f"http://127.0.0.1:1/?t={token}"}, {}, secrets=[token])
    assert outcome.status == "failed"
    assert token not in repr(outcome)


def test_missing_variable_is_an_error_that_names_it():
    outcome = run("http", {"url": "{{ base_url }}/health"}, {"other": "x"})
    assert outcome.status == "error"
    assert "base_url" in outcome.message
    assert outcome.evidence["missing_variable"] == "base_url"


def test_variable_filling_a_file_url_is_refused_after_filling():
    outcome = run("http", {"url": "{{ target }}"}, {"target": "file:///etc/passwd"})
    assert outcome.status == "error"
    assert "only http and https URLs" in outcome.message


def test_proxy_variables_in_the_environment_are_ignored(http_server, monkeypatch):  # noqa: F811
    # A proxy would carry the request past the deny check; 127.0.0.1:1 refuses if it were used.
    http_server.route("/", 200, "direct")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert run("http", {"url": http_server.url("/")}, {}).status == "passed"


def test_connection_refused_fails_fast():
    started = time.monotonic()
    outcome = run("http", {"url": "http://127.0.0.1:1/"}, {})
    assert outcome.status == "failed"
    assert "connection refused" in outcome.message
    assert time.monotonic() - started < 1


# --- the deny list --------------------------------------------------------------------------


def test_denied_address_is_refused_without_connecting(deny):
    deny("127.0.0.2/32")
    outcome = run("http", {"url": "http://127.0.0.2:8080/"}, {})
    assert outcome.status == "error"
    assert outcome.message == "127.0.0.2 is in a denied network (127.0.0.2/32)"


@pytest.mark.parametrize(
    "address, shown",
    [
        ("169.254.169.254", "169.254.169.254 is in a denied network (169.254.0.0/16)"),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254 (169.254.169.254) is in a denied network (169.254.0.0/16)"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe is in a denied network (169.254.0.0/16)"),
        ("fd00:ec2::254", "fd00:ec2::254 is in a denied network (fd00:ec2::/32)"),
    ],
)
def test_metadata_addresses_are_always_refused_in_every_spelling(settings, address, shown):
    # Checked without any network traffic: these addresses must never be contacted, even by
    # a test. The built-in networks hold even when the setting is emptied.
    settings.DEPLOYCHECK_CHECK_DENY_NETS = []
    with pytest.raises(Denied) as refused:
        check_address(ipaddress.ip_address(address), address)
    assert str(refused.value) == shown


def test_localhost_is_refused_when_loopback_is_denied(deny, http_server):  # noqa: F811
    http_server.route("/", 200, "should never be asked")
    deny("127.0.0.0/8")
    outcome = run("http", {"url": http_server.url("/", host="localhost")}, {})
    assert outcome.status == "error"
    assert "localhost resolves to 127.0.0.1, which is in a denied network (127.0.0.0/8)" in outcome.message
    assert http_server.seen == []


def test_dns_name_pointing_at_a_denied_address_is_refused(deny, resolver):  # noqa: F811
    resolver({("internal.test", "A"): ["127.0.0.2"]})
    deny("127.0.0.2/32")
    outcome = run("http", {"url": "http://internal.test:8080/"}, {})
    assert outcome.status == "error"
    assert "internal.test resolves to 127.0.0.2, which is in a denied network (127.0.0.2/32)" in outcome.message


def test_name_is_resolved_by_the_check_and_the_host_header_is_kept(resolver, http_server):  # noqa: F811
    # app.test exists only in the local DNS server: the request can only succeed if the
    # connection goes to the address our resolver returned.
    resolver({("app.test", "A"): ["127.0.0.1"]})
    http_server.route("/", 200, "hello app")
    outcome = run("http", {"url": f"http://app.test:{http_server.port}/", "contains": "hello app"}, {})
    assert outcome.status == "passed", outcome.message
    assert http_server.seen[-1]["headers"]["Host"] == f"app.test:{http_server.port}"


def test_redirect_to_a_denied_address_is_refused_at_that_hop(deny, http_server):  # noqa: F811
    deny("127.0.0.2/32")
    http_server.routes["/go"] = redirect("http://127.0.0.2:9/admin")
    outcome = run("http", {"url": http_server.url("/go")}, {})
    assert outcome.status == "error"
    assert "127.0.0.2 is in a denied network (127.0.0.2/32)" in outcome.message
    assert outcome.evidence["hops"] == [
        {"url": http_server.url("/go"), "status": 302, "location": "http://127.0.0.2:9/admin"}
    ]


def test_redirect_to_a_name_that_resolves_to_a_denied_address_is_refused(deny, resolver, http_server):  # noqa: F811
    resolver({("rebind.test", "A"): ["127.0.0.2"]})
    deny("127.0.0.2/32")
    http_server.routes["/go"] = redirect("http://rebind.test/")
    outcome = run("http", {"url": http_server.url("/go")}, {})
    assert outcome.status == "error"
    assert "rebind.test resolves to 127.0.0.2" in outcome.message


def test_redirect_to_another_scheme_is_not_followed(http_server):  # noqa: F811
    http_server.routes["/go"] = redirect("file:///etc/passwd")
    outcome = run("http", {"url": http_server.url("/go")}, {})
    assert outcome.status == "failed"
    assert "only http and https are followed" in outcome.message


# --- https through the combined CA bundle ---------------------------------------------------


def test_https_with_an_internal_ca_verifies_by_name(test_ca, ca_bundle, resolver):  # noqa: F811
    resolver({("secure.test", "A"): ["127.0.0.1"]})
    server = tls_server(test_ca, "secure.test")
    try:
        outcome = run("http", {"url": f"https://secure.test:{server.port}/", "contains": "secure hello"}, {})
    finally:
        server.stop()
    assert outcome.status == "passed", outcome.message


def test_https_without_the_internal_ca_fails_verification(test_ca, settings):  # noqa: F811
    settings.DEPLOYCHECK_CA_BUNDLE = ""
    server = tls_server(test_ca, "localhost")
    try:
        outcome = run("http", {"url": server.url("/", host="localhost")}, {})
    finally:
        server.stop()
    assert outcome.status == "failed"
    assert "certificate verify failed" in outcome.message


def test_combined_bundle_keeps_the_public_cas(ca_bundle):  # noqa: F811
    from pathlib import Path

    import certifi

    from checklists.verifications.net import ca_bundle_path

    combined = Path(ca_bundle_path()).read_bytes()
    assert combined.startswith(Path(certifi.where()).read_bytes().rstrip(b"\n"))
    assert combined.rstrip().endswith(Path(ca_bundle).read_bytes().rstrip())


# --- headers --------------------------------------------------------------------------------


def test_all_security_headers_present_passes(http_server):  # noqa: F811
    http_server.route("/", 200, "hi", {k.lower() if i % 2 else k.upper(): v for i, (k, v) in enumerate(SECURITY_HEADERS.items())})
    outcome = run("headers", {"url": http_server.url("/")}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["missing"] == []


def test_missing_security_headers_are_listed(http_server):  # noqa: F811
    http_server.route("/", 200, "hi", {"X-Frame-Options": "DENY"})
    outcome = run("headers", {"url": http_server.url("/")}, {})
    assert outcome.status == "failed"
    assert outcome.message.endswith(
        "missing 3 of 4 headers: strict-transport-security, content-security-policy, x-content-type-options"
    )


def test_custom_required_headers(http_server):  # noqa: F811
    http_server.route("/", 200, "hi", {"X-Request-Id": "1"})
    assert run("headers", {"url": http_server.url("/"), "require": "x-request-id"}, {}).status == "passed"


# --- redirect -------------------------------------------------------------------------------


def test_http_redirecting_to_https_on_the_same_host_passes(http_server):  # noqa: F811
    http_server.routes["/"] = redirect("https://127.0.0.1:8443/", 301)
    outcome = run("redirect", {"url": http_server.url("/")}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["location"] == "https://127.0.0.1:8443/"


def test_redirect_to_another_host_fails(http_server):  # noqa: F811
    http_server.routes["/"] = redirect("https://elsewhere.example/", 308)
    outcome = run("redirect", {"url": http_server.url("/")}, {})
    assert outcome.status == "failed"
    assert "another host" in outcome.message


def test_plain_200_is_not_a_redirect(http_server):  # noqa: F811
    http_server.route("/", 200, "insecure page")
    outcome = run("redirect", {"url": http_server.url("/")}, {})
    assert outcome.status == "failed"
    assert "answered 200, not a redirect" in outcome.message


def test_redirect_to_plain_http_fails(http_server):  # noqa: F811
    http_server.routes["/"] = redirect(http_server.url("/elsewhere"))
    outcome = run("redirect", {"url": http_server.url("/")}, {})
    assert outcome.status == "failed"
    assert "not https" in outcome.message
