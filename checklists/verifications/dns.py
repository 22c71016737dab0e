"""`dns`: the record resolves, to the expected values when `expect` is given (in any order)."""

from __future__ import annotations

import ipaddress
import re

import dns.exception
import dns.rdatatype
import dns.resolver

from . import net
from .base import (
    CheckContext,
    Outcome,
    ParamError,
    check_keys,
    clean_choice,
    failed,
    has_placeholder,
    is_host,
    literal_parts,
    passed,
)

KIND = "dns"
KEYS: dict[str, str | None] = {"name": None, "type": "A", "expect": None, "server": None}
REQUIRED = frozenset({"name"})
# A `{{ host }}` of "name:port" names the record `name`; a DNS name has no port.
HOST_WITH_PORT = {"name": None}
TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA")
NAME_LABEL = re.compile(r"^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$")


def clean_name(key: str, value: str) -> str:
    if has_placeholder(value):
        if not all(re.fullmatch(r"[A-Za-z0-9_.*-]*", part) for part in literal_parts(value)):
            raise ParamError(f"{key}: {value!r} is not a DNS name")
        return value
    name = value.rstrip(".")
    if not name or len(name) > 253 or not all(NAME_LABEL.match(label) for label in name.split(".")):
        raise ParamError(f"{key}: {value!r} is not a DNS name")
    return name.lower()


def normal_value(rdtype: str, value: str) -> str:
    """One expected or answered value in the form both sides are compared in."""
    value = value.strip()
    if rdtype in ("A", "AAAA"):
        address = ipaddress.ip_address(value)
        if (address.version == 4) != (rdtype == "A"):
            raise ValueError(f"not an {'IPv4' if rdtype == 'A' else 'IPv6'} address")
        return str(address)
    if rdtype in ("CNAME", "NS"):
        return value.lower().rstrip(".")
    if rdtype == "MX":
        preference, _, host = value.partition(" ")
        if not (preference.isascii() and preference.isdigit()) or not host.strip():
            raise ValueError("write an MX value as 'PREFERENCE HOST', e.g. '10 mail.example.com'")
        return f"{int(preference)} {host.strip().lower().rstrip('.')}"
    if rdtype == "TXT":
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return " ".join(value.split()).lower().rstrip(".")


def clean_expect(key: str, value: str, rdtype: str) -> str:
    if has_placeholder(value) or has_placeholder(rdtype):
        return value
    values = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            values.append(normal_value(rdtype, part))
        except ValueError as exc:
            raise ParamError(f"{key}: {part.strip()!r} is not a valid {rdtype} value ({exc})") from None
    if not values:
        raise ParamError(f"{key}: give at least one value")
    return ",".join(dict.fromkeys(values))


def clean_server(key: str, value: str) -> str:
    if has_placeholder(value):
        return value
    try:
        host, port = net.split_host_port(value, 53)
    except ValueError:
        raise ParamError(f"{key}: {value!r} is not host[:port]") from None
    if not is_host(host) or not 1 <= port <= 65535:
        raise ParamError(f"{key}: {value!r} is not a resolver host[:port]")
    return value.lower()


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["name"] = clean_name("name", clean["name"])
    if "type" in clean:
        clean["type"] = clean_choice("type", clean["type"], TYPES, upper=True)
    if "expect" in clean:
        clean["expect"] = clean_expect("expect", clean["expect"], clean.get("type", "A"))
    if "server" in clean:
        clean["server"] = clean_server("server", clean["server"])
    return clean


def render(rdtype: str, rdata) -> str:
    if rdtype in ("A", "AAAA"):
        return normal_value(rdtype, rdata.address)
    if rdtype in ("CNAME", "NS"):
        return rdata.target.to_text(omit_final_dot=True).lower()
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}"
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return normal_value(rdtype, rdata.to_text())


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    name, rdtype = params["name"], params["type"]
    servers, shown_server = None, "system resolver"
    pinned = net.pinned_nameservers()
    if pinned:
        # The operator pinned the resolvers checks use: a dns check without its own server
        # asks them too, or it would contradict what the http and tls checks resolved.
        servers, shown_server = pinned, ", ".join(f"{host}:{port}" for host, port in pinned)
    if "server" in params:
        host, port = net.split_host_port(params["server"], 53)
        # The resolver is a target the author chose, so it meets the deny list too.
        address = net.resolve_checked(host, ctx.deadline)[0]
        servers, shown_server = [(str(address), port)], f"{address}:{port}"
    try:
        resolver = net.make_resolver(servers)
    except dns.resolver.NoResolverConfiguration:
        raise net.ConfigError("this server has no DNS resolver configured; give the check a server") from None
    evidence = {"name": name, "type": rdtype, "server": shown_server}
    try:
        answer = resolver.resolve(name, dns.rdatatype.from_text(rdtype), lifetime=ctx.deadline.timeout(),
                                  search=False)
    except dns.resolver.NXDOMAIN:
        return failed(f"{name} does not exist (NXDOMAIN from {shown_server})", **evidence)
    except dns.resolver.NoAnswer:
        return failed(f"{name} exists but has no {rdtype} record", **evidence)
    except dns.exception.Timeout:
        raise ctx.deadline.exceeded(f"no DNS answer for {name} from {shown_server}") from None
    except dns.resolver.NoNameservers as exc:
        return failed(f"no name server answered {name} {rdtype}: {exc}", **evidence)
    answers = sorted(dict.fromkeys(render(rdtype, rdata) for rdata in answer))
    evidence.update(answers=answers, ttl=answer.rrset.ttl if answer.rrset is not None else None)
    if "expect" not in params:
        return passed(f"{name} {rdtype} resolves to {', '.join(answers)}", **evidence)
    expected = sorted(dict.fromkeys(normal_value(rdtype, v) for v in params["expect"].split(",") if v.strip()))
    if answers == expected:
        return passed(f"{name} {rdtype} is {', '.join(answers)}, as expected", **evidence)
    missing = [v for v in expected if v not in answers]
    unexpected = [v for v in answers if v not in expected]
    evidence.update(expected=expected, missing=missing, unexpected=unexpected)
    return failed(f"{name} {rdtype} is {', '.join(answers)}, expected {', '.join(expected)}", **evidence)
