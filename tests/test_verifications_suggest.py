"""Checks the template editor suggests from what an item's author already wrote."""

from checklists.verifications.suggest import suggest


def test_curl_fail_suggests_an_http_check():
    body = "```sh\ncurl -fsS -o /dev/null https://app.example.com/healthz\n```"
    assert suggest("Health endpoint answers", body) == [("http", {"url": "https://app.example.com/healthz"})]


def test_curl_head_suggests_a_headers_check():
    assert suggest("Security headers are sent", "`curl -I https://app.example.com/`") == [
        ("headers", {"url": "https://app.example.com/"})
    ]


def test_curl_with_a_placeholder_url_keeps_the_placeholder():
    assert suggest("Smoke test", "curl --fail {{ base_url }}/health") == [("http", {"url": "{{base_url}}/health"})]


def test_curl_options_with_values_are_not_taken_for_the_url():
    body = 'curl -H "Authorization: Bearer x" -X POST --fail https://api.example.com/v1/ping'
    assert suggest("API ping", body) == [("http", {"url": "https://api.example.com/v1/ping", "method": "POST"})]


def test_plain_curl_without_fail_suggests_nothing():
    assert suggest("Look at the page", "curl https://app.example.com/") == []


def test_certificate_expiry_prose_suggests_a_tls_check():
    assert suggest("Check the SSL certificate for shop.example.org does not expire within 14 days", "") == [
        ("tls", {"host": "shop.example.org", "min_days": "14"})
    ]


def test_certificate_expiry_with_a_url_takes_its_host_and_port():
    assert suggest("TLS cert valid", "Open https://api.example.com:8443/ and check the expiry date") == [
        ("tls", {"host": "api.example.com", "port": "8443"})
    ]


def test_certificate_file_names_are_not_hosts():
    assert suggest("Renew the TLS certificate", "Copy fullchain.pem and privkey.pem to the server") == []


def test_redis_cli_ping_with_a_host_suggests_a_tcp_probe():
    assert suggest("Redis is up", "redis-cli -h cache.internal -p 6380 ping") == [
        ("tcp", {"host": "cache.internal", "port": "6380", "probe": "redis"})
    ]


def test_redis_cli_without_a_host_suggests_nothing():
    # It would run against the machine the command is typed on, not where checks run.
    assert suggest("Redis is up", "redis-cli ping") == []


def test_same_suggestion_is_offered_once():
    body = "curl -f https://a.example/ \n curl -f https://a.example/"
    assert suggest("twice", body) == [("http", {"url": "https://a.example/"})]
