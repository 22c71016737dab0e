"""Real servers on 127.0.0.1 for the verification tests: HTTP(S), DNS and S3.

Every server binds 127.0.0.1 on a free port and stops with its fixture. Nothing here talks to
any other address. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trustme

LOOPBACK = "127.0.0.1"


# --- HTTP and HTTPS -------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    server: LocalServer

    def log_message(self, *args):  # keep test output readable
        pass

    def _dispatch(self):
        path = self.path.split("?", 1)[0]
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        route = self.server.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client gave up, which is what some tests want

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _dispatch

    def reply(self, status: int = 200, body: bytes | str = b"", headers: dict | None = None):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LocalServer(http.server.ThreadingHTTPServer):
    """An HTTP server whose routes are plain functions of the request handler.

    With a TLS context the handshake happens on the request's own thread, so a client that
    rejects the certificate (or never speaks) cannot stall the accept loop.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__((LOOPBACK, 0), Handler)
        self.tls = tls
        self.routes: dict[str, Callable[[Handler], None]] = {}
        self.seen: list[dict] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/", host: str = LOOPBACK) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(5)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            # socketserver closes the plain socket it handed us, which wrap_socket detached.
            with request:
                super().finish_request(request, client_address)
            return
        super().finish_request(request, client_address)

    def route(self, path: str, status: int = 200, body: bytes | str = b"", headers: dict | None = None):
        self.routes[path] = lambda h: h.reply(status, body, headers)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()


def slow(server: LocalServer, seconds: float, body: str = "ok") -> Callable[[Handler], None]:
    def route(h: Handler):
        server.stopping.wait(seconds)
        h.reply(200, body)

    return route


def hang(server: LocalServer) -> Callable[[Handler], None]:
    """Accept the request and never answer (until the server stops)."""

    def route(h: Handler):
        server.stopping.wait(30)

    return route


def trickle(server: LocalServer, total: int = 1000, every: float = 0.2) -> Callable[[Handler], None]:
    """Send headers at once, then the body one byte at a time: no single read ever times out."""

    def route(h: Handler):
        h.send_response(200)
        h.send_header("Content-Length", str(total))
        h.end_headers()
        h.wfile.flush()
        for _ in range(total):
            if server.stopping.wait(every):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    return route


def trickle_headers(server: LocalServer, every: float = 0.2) -> Callable[[Handler], None]:
    """A slow-loris answer: the status line, then header bytes one at a time, forever."""

    def route(h: Handler):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        h.wfile.flush()
        while not server.stopping.wait(every):
            h.wfile.write(b"a")
            h.wfile.flush()

    return route


def redirect(location: str, status: int = 302) -> Callable[[Handler], None]:
    return lambda h: h.reply(status, "", {"Location": location})


@pytest.fixture
def http_server():
    server = LocalServer().start()
    yield server
    server.stop()


# --- TLS certificates -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA(organization_name="deploycheck test CA")


@pytest.fixture
def ca_bundle(test_ca, tmp_path, settings) -> str:
    """The test CA as DEPLOYCHECK_CA_BUNDLE, the way an operator adds an internal CA."""
    path = tmp_path / "internal-ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    settings.DEPLOYCHECK_CA_BUNDLE = str(path)
    return str(path)


def tls_server(ca: trustme.CA, *names: str, not_before=None, not_after=None) -> LocalServer:
    """An HTTPS server presenting a certificate for `names` with the given validity."""
    now = dt.datetime.now(dt.timezone.utc)
    cert = ca.issue_cert(
        *names,
        not_before=not_before or now - dt.timedelta(days=1),
        not_after=not_after or now + dt.timedelta(days=90),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = LocalServer(tls=context)
    server.route("/", 200, "secure hello")
    return server.start()


# --- DNS ------------------------------------------------------------------------------------


class DNSServer:
    """An authoritative UDP DNS server for a handful of records; unknown names get NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]]):
        self.records = {(name.lower().rstrip("."), rdtype.upper()): values for (name, rdtype), values in records.items()}
        self.queries: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", rdtype, values))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _serve(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                self.sock.sendto(self._answer(dns.message.from_wire(data)).to_wire(), peer)
            except Exception:  # a malformed query is not this test server's problem
                continue

    def start(self) -> DNSServer:
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def dns_server():
    servers = []

    def start(records: dict[tuple[str, str], list[str]]) -> DNSServer:
        server = DNSServer(records).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def resolver(settings, dns_server):  # noqa: F811
    """The checks' name resolution goes to a local DNS server holding `records`."""

    def start(records):
        server = dns_server(records)
        settings.DEPLOYCHECK_CHECK_NAMESERVERS = [server.address]
        return server

    return start


class OrderedDNSServer(DNSServer):
    """A DNSServer that answers records in the order given (dnspython shuffles them by default),
    for tests about which of a name's addresses a check tries first."""

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = super()._answer(query)
        to_wire = response.to_wire
        response.to_wire = lambda *args, **kw: to_wire(*args, want_shuffle=False, **kw)
        return response


@pytest.fixture
def ordered_dns_server():
    servers = []

    def start(records: dict[tuple[str, str], list[str]]) -> OrderedDNSServer:
        server = OrderedDNSServer(records).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def backdate_s3_object(bucket: str, key: str, when: dt.datetime) -> None:
    """S3 sets LastModified itself; the test reaches into moto's in-process store to age a backup."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys[key].last_modified = when.replace(tzinfo=None)


def wait_for(predicate: Callable[[], bool], seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --- plain TCP, silent addresses, connection log (network and hygiene tests) ----------------


class TCPResponder:
    """A TCP server on `host` that answers every connection with `reply` after its first read.

    Enough for the tcp check's probes: b"+PONG\\r\\n" is a Redis, b"N" a PostgreSQL without TLS.
    """

    def __init__(self, reply: bytes, host: str = LOOPBACK, port: int = 0):
        self.reply = reply
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket):
        with conn:
            try:
                conn.settimeout(2)
                conn.recv(1024)
                conn.sendall(self.reply)
            except OSError:
                pass

    def start(self) -> TCPResponder:
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def tcp_server():
    servers = []

    def start(reply: bytes, host: str = LOOPBACK, port: int = 0) -> TCPResponder:
        server = TCPResponder(reply, host, port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Blackhole:
    """A loopback address:port that never completes a connection.

    A listener with a backlog of 0 whose one queue slot is taken by a connection nobody
    accepts: Linux then drops further SYNs, so a client's connect() waits until its timeout,
    like an address behind a firewall that drops packets. Only for 127.0.0.0/8 addresses.
    """

    def __init__(self, host: str, port: int = 0):
        assert host.startswith("127."), "test servers live on loopback only"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, port))
        self.sock.listen(0)
        self.filler = socket.create_connection(self.sock.getsockname(), timeout=2)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def close(self):
        self.filler.close()
        self.sock.close()


@pytest.fixture
def blackhole():
    holes = []

    def make(host: str, port: int = 0) -> Blackhole:
        hole = Blackhole(host, port)
        holes.append(hole)
        return hole

    yield make
    for hole in holes:
        hole.close()


def free_port(host: str = LOOPBACK) -> int:
    """A port with nothing listening on `host` (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def connects(monkeypatch) -> list[tuple]:
    """Every socket connect() made while the test runs, as (host, port, socket type).

    Sockets are made through a recording subclass of socket.socket. A connect to anything
    outside 127.0.0.0/8 is recorded and refused without a packet: a test that gets that far
    has already failed, and the network beyond loopback stays untouched.
    """
    import ipaddress

    log: list[tuple] = []
    real = socket.socket

    class Recording(real):
        def connect(self, address):
            host, port = address[0], address[1]
            log.append((host, port, self.type))
            try:
                ip = ipaddress.ip_address(str(host).split("%", 1)[0])
            except ValueError:
                ip = None
            if ip is not None and ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if ip is None or ip.version != 4 or not ip.is_loopback:
                raise ConnectionRefusedError(f"test guard: {host} is outside 127.0.0.0/8")
            return super().connect(address)

    monkeypatch.setattr(socket, "socket", Recording)
    return log


def gzip_bomb(inflated: int = 50 * 1024 * 1024) -> bytes:
    """`inflated` zero bytes, gzip-compressed (50 MB -> about 50 KB), built a chunk at a time."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    chunk = bytes(1024 * 1024)
    parts = [packer.compress(chunk) for _ in range(inflated // len(chunk))]
    parts.append(packer.compress(bytes(inflated % len(chunk))))
    parts.append(packer.flush())
    return b"".join(parts)
