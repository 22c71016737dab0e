"""`tls`: the certificate verifies for the host and does not expire within `min_days`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import net
from .base import (
    CheckContext,
    Outcome,
    check_keys,
    clean_host,
    clean_int,
    clean_port,
    failed,
    passed,
)

KIND = "tls"
KEYS: dict[str, str | None] = {"host": None, "port": "443", "min_days": "30"}
REQUIRED = frozenset({"host"})
# `{{ host }}` may be "name:port"; its port replaces the default 443.
HOST_WITH_PORT = {"host": "port"}
DAY = 86400


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["host"] = clean_host("host", clean["host"])
    if "port" in clean:
        clean["port"] = clean_port("port", clean["port"])
    if "min_days" in clean:
        clean["min_days"] = clean_int("min_days", clean["min_days"], 0, 3650)
    return clean


def _handshake(sock: socket.socket, host: str, deadline: net.Deadline, verify: bool,
               cap: float | None = None) -> bytes:
    try:
        sock.settimeout(deadline.timeout(cap))
        with net.tls_context(verify).wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)
    finally:
        sock.close()


def _left(ends: float | None) -> float | None:
    """Seconds until `ends`, an address's part of the deadline (None: all that is left)."""
    return None if ends is None else max(0.001, ends - time.monotonic())


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    host, port, min_days = params["host"], int(params["port"]), int(params["min_days"])
    where = f"{host}:{port}"
    deadline = ctx.deadline
    # Resolve and check once, then connect only to the addresses checked. Each address gets an
    # even part of what is left of the deadline for its connect and handshake, so one that
    # never answers leaves time for the next; the last one gets all that is left.
    addresses = net.resolve_checked(host, deadline)
    problems: list = []
    error = der = address = None
    for index, address in enumerate(addresses):
        last = index == len(addresses) - 1
        part_ends = None if last else time.monotonic() + deadline.share(len(addresses) - index)
        try:
            sock = net.connect_address(address, port, deadline, _left(part_ends))
        except OSError as exc:
            if deadline.expired or (last and isinstance(exc, TimeoutError)):
                raise deadline.exceeded(f"no connection to {where}") from None
            problems.append((address, net._reason(exc)))
            continue
        try:
            der = _handshake(sock, host, deadline, verify=True, cap=_left(part_ends))
        except ssl.SSLCertVerificationError as exc:
            error = exc.verify_message or str(exc)
            # Python keeps no certificate from a failed handshake: fetch it again, unverified,
            # from the same address, only to explain what is wrong with it.
            try:
                der = _handshake(net.connect_address(address, port, deadline), host, deadline, verify=False)
            except (ssl.SSLError, OSError) as again:
                if deadline.expired:
                    raise deadline.exceeded(f"no TLS handshake with {where}") from None
                return failed(f"{where}: certificate verify failed ({error}); it could not be read ({again})",
                              verified=False, error=error, address=str(address))
        except ssl.SSLError as exc:
            if deadline.expired:
                raise deadline.exceeded(f"no TLS handshake with {where}") from None
            return failed(f"{where}: TLS handshake failed ({exc.reason or exc})", verified=False, error=str(exc),
                          address=str(address))
        except OSError as exc:
            if deadline.expired or (last and isinstance(exc, TimeoutError)):
                raise deadline.exceeded(f"no TLS handshake with {where}") from None
            if isinstance(exc, TimeoutError):
                problems.append((address, "no TLS handshake (timed out)"))
                continue
            return failed(f"{where}: TLS handshake failed ({exc})", verified=False, error=str(exc),
                          address=str(address))
        break
    if der is None:
        raise net.unreachable(host, port, problems)
    tried = [{"address": str(a), "problem": p} for a, p in problems]

    facts = describe(x509.load_der_x509_certificate(der))
    now = dt.datetime.now(dt.timezone.utc)
    seconds_left = (facts.pop("_not_after") - now).total_seconds()
    not_before = facts.pop("_not_before")
    days_left = int(seconds_left / DAY)
    evidence = {**facts, "days_left": days_left, "verified": error is None, "error": error, "address": str(address)}
    if tried:
        evidence["tried"] = tried

    if error is None:
        if days_left < min_days:
            return failed(f"{where}: expires in {_days(days_left)}, fewer than {min_days} "
                          f"(on {facts['not_after'][:10]})", **evidence)
        return passed(f"{where}: valid for another {_days(days_left)} (until {facts['not_after'][:10]}), "
                      f"issued by {facts['issuer']}", **evidence)

    reasons = []
    if seconds_left < 0:
        ago = int(-seconds_left / DAY)
        when = f"{_days(ago)} ago" if ago else "less than a day ago"
        reasons.append(f"certificate expired {when} (on {facts['not_after'][:10]})")
    if not_before > now:
        reasons.append(f"certificate is not valid before {not_before.isoformat()}")
    names = facts["sans"] or ([facts["subject"]] if facts["subject"] else [])
    if not matches(host, facts["sans"]):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        reasons.append(f"certificate is for {shown or 'no host name'}, not {host}")
    if not reasons:
        reasons.append(f"certificate is not trusted: {error} (issuer: {facts['issuer']})")
    return failed(f"{where}: " + "; ".join(reasons), **evidence)


def _days(n: int) -> str:
    return f"{n} day" if abs(n) == 1 else f"{n} days"


def _name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return str(cns[0].value)
    return name.rfc4514_string()


def describe(cert: x509.Certificate) -> dict:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [*ext.get_values_for_type(x509.DNSName), *map(str, ext.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        sans = []
    return {
        "subject": _name(cert.subject),
        "sans": sans,
        "issuer": _name(cert.issuer),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "_not_after": cert.not_valid_after_utc,
        "_not_before": cert.not_valid_before_utc,
    }


def matches(host: str, sans: list[str]) -> bool:
    """RFC 6125 matching, only to explain a failure (OpenSSL already decided)."""
    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in sans:
        name = name.lower().rstrip(".")
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                continue
        elif name == host:
            return True
        elif name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False
