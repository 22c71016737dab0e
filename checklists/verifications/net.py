"""The one guarded door to the network for every check kind.

Three rules hold for every byte a check sends:

1. Every address is checked against DEPLOYCHECK_CHECK_DENY_NETS (CIDRs, or the word `private`)
   at the moment we connect, every redirect hop included, and we connect to the address we
   checked. Resolving once to check and letting a library resolve again to connect would let a
   DNS answer that changes between the two (rebinding) reach a denied address.
   DEPLOYCHECK_CHECK_ALLOW_NETS (CIDRs or host names) lets a denied address through again; the
   cloud metadata networks stay denied whatever either setting says. Both settings are read at
   call time, so a test's `settings` fixture (or an operator's reload) takes effect at once.
2. A check has one total deadline. Library timeouts bound each socket operation, not the
   whole call, so every operation gets what is left of the deadline (a name with several
   addresses splits it between them, so one silent address cannot eat it all), and a watchdog
   shuts the check's sockets when the deadline passes, whatever library code is blocked on them.
3. Name resolution never uses the unbounded `getaddrinfo` on the calling thread: dnspython with
   the remaining time as its lifetime, the hosts file read directly, and `getaddrinfo` only as a
   last resort on a helper thread we stop waiting for.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import certifi
import dns.exception
import dns.resolver
import requests
import urllib3.connection
import urllib3.connectionpool
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints: denied even if a test or an operator replaces the settings list,
# and never lifted by DEPLOYCHECK_CHECK_ALLOW_NETS.
ALWAYS_DENIED = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00:ec2::/32"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")

# What the word `private` in DEPLOYCHECK_CHECK_DENY_NETS stands for. IPv4-mapped (::ffff:a.b.c.d),
# 6to4 and NAT64 spellings are caught too: every address is compared in all its forms.
PRIVATE = "private"
PRIVATE_NETS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "127.0.0.0/8",  # loopback
        "::1/128",
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "fe80::/10",
        "100.64.0.0/10",  # CGNAT (RFC 6598)
        "fc00::/7",  # unique-local IPv6
    )
)
ALLOW_SETTING = "DEPLOYCHECK_CHECK_ALLOW_NETS"

USER_AGENT = "deploycheck-verification/1.0"
MAX_HOPS = 10
BODY_LIMIT = 1024 * 1024
IDENTITY = "identity"


class NetError(Exception):
    """A network step failed; the message is written for the person reading the checklist.

    `status` is the Outcome status it stands for: the target misbehaving is a failed check,
    a check we refuse to run is an error.
    """

    status = "failed"

    def __init__(self, message: str, **evidence):
        super().__init__(message)
        self.evidence = evidence


class Denied(NetError):
    status = "error"


class Unresolvable(NetError):
    pass


class Unreachable(NetError):
    pass


class DeadlineExceeded(NetError):
    pass


class ConfigError(NetError):
    status = "error"


def _seconds(value: float) -> str:
    return f"{value:g}"


# --- the deadline ---------------------------------------------------------------------------


class Deadline:
    """A total time budget. Used as a context manager it also arms the socket watchdog."""

    # Per-operation timeouts normally fire first and give the cleaner message; the watchdog
    # is the backstop for code that resets its own timeouts or trickles below them.
    GRACE = 0.25

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.started = time.monotonic()
        self.ends = self.started + self.seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._fired = False

    def remaining(self) -> float:
        return max(0.0, self.ends - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.ends

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def exceeded(self, what: str = "no complete answer") -> DeadlineExceeded:
        return DeadlineExceeded(f"{what} within {_seconds(self.seconds)} s")

    def share(self, ways: int) -> float:
        """An even part of what is left, for one of `ways` attempts that share the deadline."""
        return self.remaining() / max(1, ways)

    def timeout(self, cap: float | None = None) -> float:
        """The time the next operation may take; raises once the budget is spent."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return min(left, cap) if cap else left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._timer is None:
                return
            if self._fired:
                sock.close()
                raise self.exceeded()
            # A duplicate descriptor survives ssl's wrap_socket (which detaches the original),
            # and shutting it down wakes whatever thread is blocked on the connection.
            self._watched.append(sock.dup())

    def _expire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._watched:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(self.remaining() + self.GRACE, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            for sock in self._watched:
                sock.close()
            self._watched.clear()


# --- addresses ------------------------------------------------------------------------------


def normalise(address: IPAddress) -> IPAddress:
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forms(address: IPAddress) -> list[IPAddress]:
    """The address plus any IPv4 address it smuggles inside IPv6 (mapped, 6to4, NAT64)."""
    address = normalise(address)
    forms = [address]
    if address.version == 6:
        if address.sixtofour is not None:
            forms.append(address.sixtofour)
        if address in NAT64:
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class _Rule:
    """One entry of the deny list: its networks and the name a refusal shows for it."""

    label: str
    nets: tuple
    liftable: bool


def _parse_net(value, setting: str):
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError as exc:
        raise ConfigError(f"{setting}: {value!r} is not a network ({exc})") from None


@functools.lru_cache(maxsize=32)
def _deny_rules(entries: tuple) -> tuple[_Rule, ...]:
    rules = [_Rule(str(net), (net,), False) for net in ALWAYS_DENIED]
    for entry in entries:
        if isinstance(entry, str) and entry.strip().lower() == PRIVATE:
            rules.append(_Rule(PRIVATE, PRIVATE_NETS, True))
            continue
        net = _parse_net(entry, "DEPLOYCHECK_CHECK_DENY_NETS")
        if net not in ALWAYS_DENIED:
            rules.append(_Rule(str(net), (net,), True))
    return tuple(rules)


@functools.lru_cache(maxsize=32)
def _allow_rules(entries: tuple) -> tuple[tuple, frozenset]:
    """(networks, host names) from DEPLOYCHECK_CHECK_ALLOW_NETS."""
    from .base import is_host

    nets, names = [], set()
    for entry in entries:
        if isinstance(entry, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            nets.append(entry)
            continue
        value = str(entry).strip()
        if not value:
            continue
        try:
            nets.append(ipaddress.ip_network(value.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if "/" in value or ":" in value or not is_host(value) or _looks_numeric(value):
            raise ConfigError(f"{ALLOW_SETTING}: {value!r} is neither a network nor a host name")
        names.add(value.lower().rstrip("."))
    return tuple(nets), frozenset(names)


def _looks_numeric(value: str) -> bool:
    # "10.0.0" or "10.0.0.1.5" is a mistyped address, not a host name.
    return all(part.isdigit() for part in value.rstrip(".").split("."))


def _setting(name: str) -> tuple:
    value = getattr(settings, name, None) or ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    return tuple(value)


def deny_nets() -> list:
    """Every network a check may not reach (before the allow list), the built-in ones first."""
    return [net for rule in _deny_rules(_setting("DEPLOYCHECK_CHECK_DENY_NETS")) for net in rule.nets]


def _allowed(form: IPAddress, host: str | None, nets: tuple, names: frozenset) -> bool:
    if host and host.strip("[]").lower().rstrip(".") in names:
        return True
    return any(form.version == net.version and form in net for net in nets)


def check_address(address: IPAddress, host: str | None = None) -> IPAddress:
    """Return the normalised address, or raise Denied naming the network that refuses it.

    `host` is the name the check was given (or the redirect hop's host): the allow list may
    name it. The deny list is applied first; an address it refuses is let through when the
    allow list holds the host name or a network containing the address, except for the
    built-in metadata networks, which nothing lifts.
    """
    address = normalise(address)
    if not host or host == str(address):
        via = str(address)
    elif _is_ip(host):
        via = f"{host} ({address})"
    else:
        via = f"{host} resolves to {address}, which"
    if address.is_unspecified:
        raise Denied(f"{via} is not an address a check may contact", denied_address=str(address))
    rules = _deny_rules(_setting("DEPLOYCHECK_CHECK_DENY_NETS"))
    allow_nets, allow_names = _allow_rules(_setting(ALLOW_SETTING))
    for form in _forms(address):
        for rule in rules:
            net = next((net for net in rule.nets if form.version == net.version and form in net), None)
            if net is None:
                continue
            if rule.liftable and _allowed(form, host, allow_nets, allow_names):
                continue
            message = f"{via} is in a denied network ({rule.label})"
            if rule.label == PRIVATE:
                message += f"; allow it with {ALLOW_SETTING}"
            raise Denied(message, denied_address=str(address), denied_network=str(net), denied_by=rule.label)
    return address


# --- resolution -----------------------------------------------------------------------------

_gai_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="deploycheck-gai")


def _hosts_file(name: str, path: str = "/etc/hosts") -> list[IPAddress]:
    found: list[IPAddress] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and name in (alias.lower().rstrip(".") for alias in fields[1:]):
                    try:
                        found.append(ipaddress.ip_address(fields[0].split("%", 1)[0]))
                    except ValueError:
                        continue
    except OSError:
        return []
    return found


def pinned_nameservers() -> list[tuple[str, int]] | None:
    """DEPLOYCHECK_CHECK_NAMESERVERS ("host[:port]" list), when the operator pins resolvers."""
    configured = getattr(settings, "DEPLOYCHECK_CHECK_NAMESERVERS", None)
    if not configured:
        return None
    servers = []
    for entry in configured:
        host, port = split_host_port(entry, 53)
        servers.append((host, port))
    return servers


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    return host, int(port) if port else default_port


def make_resolver(servers: list[tuple[str, int]] | None) -> dns.resolver.Resolver:
    if servers is None:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host for host, _ in servers]
    resolver.port = servers[0][1]
    return resolver


def _getaddrinfo(name: str, deadline: Deadline) -> list[IPAddress]:
    future = _gai_pool.submit(socket.getaddrinfo, name, None, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=deadline.timeout())
    except concurrent.futures.TimeoutError:
        raise deadline.exceeded(f"{name} did not resolve") from None
    except socket.gaierror as exc:
        raise Unresolvable(f"{name} does not resolve ({exc.strerror})") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))


def resolve(host: str, deadline: Deadline) -> list[IPAddress]:
    """Every address `host` stands for, before any deny check."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if not name:
        raise Unresolvable("no host name given")
    from_hosts = _hosts_file(name)
    if from_hosts:
        return list(dict.fromkeys(from_hosts))
    servers = pinned_nameservers()
    try:
        resolver = make_resolver(servers)
    except dns.resolver.NoResolverConfiguration:
        return _getaddrinfo(name, deadline)
    try:
        answer = resolver.resolve_name(name, lifetime=deadline.timeout())
        addresses = [ipaddress.ip_address(a) for a in answer.addresses()]
        if addresses:
            return list(dict.fromkeys(addresses))
        raise Unresolvable(f"{name} has no A or AAAA record")
    except dns.resolver.NXDOMAIN:
        if servers is None:
            # Names from other NSS sources (container runtimes, mDNS) are still names the
            # operator expects to work; the system resolver gets what is left of the deadline.
            return _getaddrinfo(name, deadline)
        raise Unresolvable(f"{name} does not exist (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise Unresolvable(f"{name} has no A or AAAA record") from None
    except dns.exception.Timeout:
        raise deadline.exceeded(f"{name} did not resolve") from None
    except dns.resolver.NoNameservers as exc:
        raise Unresolvable(f"{name} could not be resolved: no name server answered ({exc})") from None


def resolve_checked(host: str, deadline: Deadline) -> list[IPAddress]:
    """Resolve and deny-check; one denied address refuses the name, so answers cannot mix in one."""
    return [check_address(address, host) for address in resolve(host, deadline)]


# --- connecting -----------------------------------------------------------------------------


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def connect_address(address: IPAddress, port: int, deadline: Deadline, timeout: float | None = None) -> socket.socket:
    """A TCP connection to one address that already passed `check_address`.

    `timeout` caps this attempt (a part of the deadline); OSError is left to the caller, which
    decides whether another address gets its turn.
    """
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(deadline.timeout(timeout))
        sock.connect((str(address), int(port)))
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline.watch(sock)
    return sock


def unreachable(host: str, port: int, problems: list[tuple[IPAddress, str]]) -> Unreachable:
    where = f"{host}:{port}"
    if len(problems) == 1:
        address, reason = problems[0]
        shown = where if host == str(address) else f"{where} ({address})"
        return Unreachable(f"cannot connect to {shown}: {reason}")
    return Unreachable(f"cannot connect to {where}: " + "; ".join(f"{a}: {r}" for a, r in problems),
                       tried=[str(a) for a, _ in problems])


def connect(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to an address of `host` that passed the deny check.

    Every address gets its turn: each attempt may take an even part of what is left of the
    deadline, so an address that never answers leaves time for the next one.
    """
    problems = []
    addresses = resolve_checked(host, deadline)
    for index, address in enumerate(addresses):
        last = index == len(addresses) - 1
        try:
            return connect_address(address, port, deadline, None if last else deadline.share(len(addresses) - index))
        except OSError as exc:
            if deadline.expired or (last and isinstance(exc, TimeoutError)):
                raise deadline.exceeded(f"no connection to {host}:{port}") from None
            problems.append((address, _reason(exc)))
    raise unreachable(host, port, problems)


# --- TLS trust ------------------------------------------------------------------------------

_bundle_lock = threading.Lock()
_bundle_dir: str | None = None
_bundle_cache: dict[tuple, str] = {}


def _private_dir() -> str:
    # A per-process 0700 directory: a predictable name in a shared /tmp would let another
    # local user plant a CA of their choosing before we write ours.
    global _bundle_dir
    if _bundle_dir is None:
        _bundle_dir = tempfile.mkdtemp(prefix="deploycheck-ca-")
        atexit.register(shutil.rmtree, _bundle_dir, True)
    return _bundle_dir


def ca_bundle_path() -> str:
    """certifi's CAs plus DEPLOYCHECK_CA_BUNDLE in one file (requests' verify=PATH replaces)."""
    extra = getattr(settings, "DEPLOYCHECK_CA_BUNDLE", "") or ""
    base = certifi.where()
    if not extra:
        return base
    try:
        stat = os.stat(extra)
    except OSError as exc:
        raise ConfigError(f"DEPLOYCHECK_CA_BUNDLE {extra} cannot be read ({exc.strerror})") from None
    key = (os.path.realpath(extra), stat.st_mtime_ns, stat.st_size, base)
    with _bundle_lock:
        path = _bundle_cache.get(key)
        if path and os.path.exists(path):
            return path
        with open(base, "rb") as fh:
            combined = fh.read()
        with open(extra, "rb") as fh:
            added = fh.read()
        if b"-----BEGIN CERTIFICATE-----" not in added:
            raise ConfigError(f"DEPLOYCHECK_CA_BUNDLE {extra} holds no PEM certificate")
        combined = combined.rstrip(b"\n") + b"\n" + added
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        path = os.path.join(_private_dir(), f"bundle-{digest}.pem")
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            fh.write(combined)
        os.replace(tmp, path)
        _bundle_cache[key] = path
        return path


def tls_context(verify: bool = True) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_bundle_path())
    except ssl.SSLError as exc:
        raise ConfigError(f"the CA bundle cannot be loaded ({exc})") from None


# --- HTTP -----------------------------------------------------------------------------------


class _GuardedHTTPConnection(urllib3.connection.HTTPConnection):
    def __init__(self, *args, deadline: Deadline, **kwargs):
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        # urllib3 keeps the URL's host for the Host header and SNI; only the socket is ours.
        return connect(self._dns_host, self.port, self.deadline)


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def __init__(self, *args, deadline: Deadline, **kwargs):
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        return connect(self._dns_host, self.port, self.deadline)


class _GuardedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def __init__(self, *args, deadline: Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn_kw["deadline"] = deadline


class _GuardedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def __init__(self, *args, deadline: Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn_kw["deadline"] = deadline


class GuardedAdapter(HTTPAdapter):
    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_GuardedHTTPPool, deadline=self.deadline),
            "https": functools.partial(_GuardedHTTPSPool, deadline=self.deadline),
        }

    def proxy_manager_for(self, proxy, **kwargs):
        raise ConfigError("checks never go through a proxy")


def session(deadline: Deadline) -> requests.Session:
    """A requests Session whose every connection goes through `connect()`."""
    s = requests.Session()
    # Proxy variables from the environment would carry the request past the deny check.
    s.trust_env = False
    s.proxies = {}
    s.verify = ca_bundle_path()
    s.headers["User-Agent"] = USER_AGENT
    # Ask for the bytes as they are: a check reads at most body_limit raw bytes and never
    # inflates what it reads, so a small gzip answer cannot expand into gigabytes in memory.
    s.headers["Accept-Encoding"] = IDENTITY
    adapter = GuardedAdapter(deadline)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


@dataclass
class Response:
    url: str
    status: int
    headers: CaseInsensitiveDict
    body: bytes = b""
    truncated: bool = False
    hops: list[dict] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _translate(exc: Exception, deadline: Deadline, url: str) -> NetError:
    if isinstance(exc, NetError):
        return exc
    if deadline.expired or isinstance(exc, requests.Timeout):
        return deadline.exceeded(f"no complete answer from {url}")
    if isinstance(exc, requests.exceptions.SSLError):
        reason = _innermost(exc)
        return Unreachable(f"TLS failed for {url}: {reason}")
    if isinstance(exc, requests.ConnectionError):
        return Unreachable(f"connection to {url} failed: {_innermost(exc)}")
    if isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return Unreachable(f"request to {url} failed: {_innermost(exc)}")
    raise exc


def _innermost(exc: BaseException) -> str:
    seen = set()
    while True:
        nxt = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        if isinstance(nxt, BaseException) and id(nxt) not in seen:
            seen.add(id(exc))
            exc = nxt
            continue
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {exc.verify_message}"
        return str(exc) or type(exc).__name__


def _read_body(raw, deadline: Deadline, limit: int) -> tuple[bytes, bool]:
    """Read up to `limit` bytes, re-arming the socket timeout with the time left each chunk.

    A server trickling a byte a second never trips a per-read timeout; this loop does.
    The bytes are the ones on the wire: `decode_content=False` keeps urllib3 from inflating a
    Content-Encoding the server sent although we asked for identity (a 50 KB gzip answer can
    hold gigabytes of zeros). The limit counts raw bytes.
    """
    chunks, size = [], 0
    while size < limit:
        left = deadline.timeout()
        conn = getattr(raw, "connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            sock.settimeout(left)
        chunk = raw.read1(min(65536, limit - size), decode_content=False)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), True


def fetch(
    url: str,
    deadline: Deadline,
    *,
    method: str = "GET",
    follow: bool = True,
    max_hops: int = MAX_HOPS,
    read_body: bool = True,
    body_limit: int = BODY_LIMIT,
    headers: dict | None = None,
    data: bytes | None = None,
) -> Response:
    """One HTTP exchange, redirects followed hop by hop so each new host meets the deny check."""
    hops: list[dict] = []
    # A caller's headers may not undo identity (see session()): the cap holds for every fetch.
    headers = CaseInsensitiveDict(headers or {})
    headers["Accept-Encoding"] = IDENTITY
    with session(deadline) as s:
        current, current_method, current_data = url, method, data
        while True:
            try:
                left = deadline.timeout()
                answer = s.request(
                    current_method,
                    current,
                    headers=headers,
                    data=current_data,
                    allow_redirects=False,
                    stream=True,
                    timeout=(left, left),
                )
            except Exception as exc:
                error = _translate(exc, deadline, current)
                error.evidence.setdefault("hops", hops)
                raise error from None
            location = answer.headers.get("Location")
            if follow and answer.is_redirect and location:
                answer.close()
                target = urljoin(current, location)
                hops.append({"url": current, "status": answer.status_code, "location": target})
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise NetError(f"{current} redirects to {target}: only http and https are followed", hops=hops)
                if len(hops) > max_hops:
                    raise NetError(f"more than {max_hops} redirects, last to {target}", hops=hops)
                if answer.status_code == 303 or (answer.status_code in (301, 302) and current_method == "POST"):
                    current_method, current_data = "GET", None
                current = target
                continue
            try:
                body, truncated = (b"", False)
                if read_body and current_method != "HEAD":
                    body, truncated = _read_body(answer.raw, deadline, body_limit)
            except Exception as exc:
                error = _translate(exc, deadline, current)
                error.evidence.setdefault("hops", hops)
                error.evidence.setdefault("status_code", answer.status_code)
                raise error from None
            finally:
                answer.close()
            return Response(
                url=current,
                status=answer.status_code,
                headers=answer.headers,
                body=body,
                truncated=truncated,
                hops=hops,
                elapsed_ms=deadline.elapsed_ms(),
            )
