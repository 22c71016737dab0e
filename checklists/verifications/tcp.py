"""`tcp`: the port accepts a connection, and the service behind it answers its probe."""

from __future__ import annotations

import socket
import struct
import time

from . import net
from .base import (
    CheckContext,
    Outcome,
    check_keys,
    clean_choice,
    clean_host,
    clean_port,
    failed,
    passed,
)

KIND = "tcp"
KEYS: dict[str, str | None] = {"host": None, "port": None, "probe": "none"}
REQUIRED = frozenset({"host", "port"})
# A `{{ db_host }}` of "name:port" points the probe at that port.
HOST_WITH_PORT = {"host": "port"}
PROBES = ("none", "redis", "postgres")
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["host"] = clean_host("host", clean["host"])
    clean["port"] = clean_port("port", clean["port"])
    if "probe" in clean:
        clean["probe"] = clean_choice("probe", clean["probe"], PROBES)
    return clean


def _read_line(sock: socket.socket, deadline: net.Deadline, limit: int = 512) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < limit:
        sock.settimeout(deadline.timeout())
        chunk = sock.recv(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    host, port, probe = params["host"], int(params["port"]), params["probe"]
    where = f"{host}:{port}"
    started = time.monotonic()
    sock = net.connect(host, port, ctx.deadline)
    connect_ms = int((time.monotonic() - started) * 1000)
    evidence = {"connect_ms": connect_ms, "address": sock.getpeername()[0], "probe": probe}
    try:
        if probe == "none":
            return passed(f"{where} accepts connections ({connect_ms} ms)", **evidence)
        try:
            if probe == "redis":
                return _redis(sock, where, ctx.deadline, evidence)
            return _postgres(sock, where, ctx.deadline, evidence)
        except OSError as exc:
            if ctx.deadline.expired or isinstance(exc, TimeoutError):
                raise ctx.deadline.exceeded(f"no {probe} answer from {where}") from None
            return failed(f"{where} accepted the connection but the {probe} probe failed: {exc}", **evidence)
    finally:
        sock.close()


def _redis(sock, where, deadline, evidence) -> Outcome:
    sock.settimeout(deadline.timeout())
    sock.sendall(b"PING\r\n")
    line = _read_line(sock, deadline)
    answer = line.decode("utf-8", errors="replace")
    evidence["answer"] = answer
    if line.startswith(b"+PONG"):
        return passed(f"{where}: Redis answers PONG", **evidence)
    if line.startswith(b"-NOAUTH"):
        # Without the password we cannot PING, but only a live Redis says NOAUTH.
        return passed(f"{where}: Redis is alive and requires a password (NOAUTH)", **evidence)
    if not line:
        return failed(f"{where}: closed the connection without answering PING", **evidence)
    return failed(f"{where}: answered {answer[:80]!r} to PING, not +PONG", **evidence)


def _postgres(sock, where, deadline, evidence) -> Outcome:
    sock.settimeout(deadline.timeout())
    sock.sendall(SSL_REQUEST)
    reply = sock.recv(1)
    evidence["answer"] = reply.decode("latin-1")
    if reply == b"S":
        return passed(f"{where}: PostgreSQL answers and offers TLS", **evidence)
    if reply == b"N":
        return passed(f"{where}: PostgreSQL answers (without TLS)", **evidence)
    if not reply:
        return failed(f"{where}: closed the connection without answering the PostgreSQL SSLRequest", **evidence)
    return failed(f"{where}: answered {reply!r} to a PostgreSQL SSLRequest, not S or N", **evidence)
