"""What a template author is told about a check annotation before anything runs."""

import pytest

from checklists.verifications.base import MissingVariable, ParamError
from checklists.verifications.registry import (
    KINDS,
    fill,
    placeholders,
    validate,
    with_defaults,
)


@pytest.mark.parametrize(
    "kind, params, message",
    [
        ("ping", {"host": "a"}, "unknown check kind 'ping'; known kinds: backup, dns, headers, http, redirect, tcp, tls"),
        ("http", {"url": "https://a.example", "colour": "red"}, "unknown key 'colour'"),
        ("http", {"method": "GET"}, "missing required key 'url'"),
        ("http", {"url": ""}, "url: empty value"),
        ("tcp", {"host": "db.example", "port": "99999"}, "port: '99999' is not a port (1-65535)"),
        ("tcp", {"host": "db.example", "port": "http"}, "port: 'http' is not a port"),
        ("http", {"url": "file:///etc/passwd"}, "url: only http and https URLs"),
        ("http", {"url": "ftp://files.example/x"}, "url: only http and https URLs"),
        ("http", {"url": "file://{{ x }}"}, "url: only http and https URLs"),
        ("http", {"url": "https://a.example", "status": "20"}, "status: '20' is not a status"),
        ("http", {"url": "https://a.example", "status": "2xxx"}, "status: '2xxx' is not a status"),
        ("http", {"url": "https://a.example", "max_ms": "fast"}, "max_ms: 'fast' is not a whole number"),
        ("http", {"url": "https://a.example", "timeout": "soon"}, "timeout: 'soon' is not a number"),
        ("http", {"url": "https://a.example", "timeout": "600"}, "timeout: 600 is out of range"),
        ("http", {"url": "https://a.example", "method": "BREW"}, "method: 'BREW' is not one of"),
        ("redirect", {"url": "https://a.example/"}, "url: must be an http:// URL"),
        ("dns", {"name": "a.example", "type": "PTR"}, "type: 'PTR' is not one of A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, CAA"),
        ("dns", {"name": "a.example", "expect": "1.2.3"}, "expect: '1.2.3' is not a valid A value"),
        ("dns", {"name": "bad name!"}, "name: 'bad name!' is not a DNS name"),
        ("dns", {"name": "a.example", "server": "ns.example:99999"}, "server: 'ns.example:99999' is not a resolver"),
        ("tcp", {"host": "db.example", "port": "5432", "probe": "mysql"}, "probe: 'mysql' is not one of none, redis, postgres"),
        ("tcp", {"host": "https://db.example", "port": "5432"}, "host: give a host name"),
        ("backup", {}, "give either path (a file glob) or url (s3://bucket/prefix), not both or neither"),
        ("backup", {"path": "/srv/b/*", "url": "s3://bucket/x"}, "not both or neither"),
        ("backup", {"url": "https://bucket.s3.amazonaws.com/x"}, "url: 'https://bucket.s3.amazonaws.com/x' is not an s3://bucket/prefix URL"),
        ("backup", {"path": "backups/*.gz"}, "path: 'backups/*.gz' must be an absolute path"),
        ("backup", {"path": "/srv/b/*", "max_age_hours": "a day"}, "max_age_hours: 'a day' is not a number"),
        ("tls", {"host": "app.example", "min_days": "-1"}, "min_days: '-1' is not a whole number"),
        ("headers", {"url": "https://a.example", "require": "x-frame-options, bad header"}, "require: 'bad header' is not a header name"),
    ],
)
def test_bad_annotation_is_refused_with_a_message_naming_the_key(kind, params, message):
    with pytest.raises(ParamError) as refused:
        validate(kind, params)
    assert message in str(refused.value)


def test_validate_normalises_without_adding_defaults():
    assert validate("http", {"URL": " https://a.example/health ", "method": "head", "status": "2XX"}) == {
        "url": "https://a.example/health",
        "method": "HEAD",
        "status": "2xx",
    }
    assert validate("tls", {"host": "App.Example.COM"}) == {"host": "app.example.com"}
    assert validate("headers", {"url": "https://a.example", "require": "X-Frame-Options, x-frame-options,CSP"}) == {
        "url": "https://a.example",
        "require": "x-frame-options,csp",
    }


def test_validate_is_idempotent_so_export_is_stable():
    samples = [
        ("http", {"url": "https://a.example", "method": "post", "status": "5XX", "max_ms": "0800", "timeout": "2.5"}),
        ("dns", {"name": "Example.COM.", "type": "mx", "expect": "10 Mail.Example.com., 20 b.example.com"}),
        ("tcp", {"host": "[::1]", "port": "06379", "probe": "Redis"}),
        ("backup", {"url": "s3://nightly/db/", "max_age_hours": "26.5"}),
    ]
    for kind, params in samples:
        once = validate(kind, params)
        assert validate(kind, once) == once


def test_with_defaults_fills_what_the_author_left_out():
    assert with_defaults("tls", {"host": "a.example"}) == {"host": "a.example", "port": "443", "min_days": "30"}
    assert with_defaults("http", {"url": "https://a.example"}) == {"url": "https://a.example", "method": "GET", "status": "200"}


@pytest.mark.parametrize(
    "kind, params",
    [
        ("http", {"url": "{{ base_url }}/health"}),
        ("http", {"url": "https://{{ host }}/health", "max_ms": "{{ budget }}"}),
        ("tcp", {"host": "{{ redis_host }}", "port": "{{ redis_port }}", "probe": "redis"}),
        ("redirect", {"url": "http://{{ domain }}/"}),
        ("backup", {"url": "s3://{{ bucket }}/db/"}),
        ("dns", {"name": "{{domain}}", "expect": "{{ ip }}"}),
    ],
)
def test_placeholders_pass_validation_as_far_as_they_can_be_checked(kind, params):
    assert validate(kind, params) == params


def test_fill_replaces_placeholders_with_or_without_spaces():
    filled = fill({"url": "{{base}}/x?env={{  env }}"}, {"base": "https://a.example", "env": "prod"})
    assert filled == {"url": "https://a.example/x?env=prod"}


def test_fill_names_the_missing_variable():
    with pytest.raises(MissingVariable) as missing:
        fill({"port": "{{ redis_port }}"}, {})
    assert missing.value.name == "redis_port"
    assert "redis_port" in str(missing.value)
    assert isinstance(missing.value, ParamError)


def test_a_variable_holding_braces_is_not_filled_twice():
    assert fill({"contains": "{{ a }}"}, {"a": "{{ b }}", "b": "x"}) == {"contains": "{{ b }}"}


def test_placeholders_lists_the_variables_a_check_needs():
    assert placeholders({"host": "{{ h }}", "port": "{{p}}", "x": "{{ h }}"}) == ["h", "p"]


def test_every_kind_declares_the_interface():
    for kind, module in KINDS.items():
        assert module.KIND == kind
        assert set(module.REQUIRED) <= set(module.KEYS)
        assert callable(module.validate) and callable(module.run)
