"""Checks worth suggesting for an item, read as a person reads it: its words and its commands.

Pure text in, suggestions out (no database): the template editor and the import offer them,
a person attaches them. Two sources of evidence:

* commands in the item's text or body (inline code, fenced blocks): `curl`, `wget`,
  `Invoke-WebRequest`, `dig`, `nslookup`, `openssl s_client -connect`, `pg_isready`,
  `redis-cli ... ping`, `aws s3 ls s3://...`, `ls` of a backup folder, `Test-NetConnection`,
  and "open / visit / go to URL";
* the item's words: a certificate valid / active / expiring (tls), HTTPS enforced or
  redirecting (redirect), security headers present (headers), a health endpoint or a
  liveness / readiness probe answering, a site that loads (http), Redis or the database
  connection working (tcp with a probe), DNS records pointing or propagated (dns), backups
  running / recent (backup).

Hosts become the run variables of the contract (`base_url`, `host`, `redis_host`, `db_host`,
`backup_path`, `backup_url`) so one environment serves every imported checklist; real host
names the author wrote stay as written. Suggestions never change the item's text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from .base import PLACEHOLDER, ParamError

__all__ = ["VARIABLES", "Suggestion", "suggest", "suggest_checks"]

# The variables suggested checks use (CONTRACT.md), with an example for the page that asks.
VARIABLES = {
    "base_url": "https://app.example.com (scheme, host, port; no trailing slash)",
    "host": "app.example.com, or app.example.com:8443",
    "redis_host": "redis.internal or redis.internal:6380",
    "db_host": "db.internal or db.internal:5433",
    "backup_path": "/var/backups/app/*.sql.gz (under DEPLOYCHECK_BACKUP_ROOTS)",
    "backup_url": "s3://bucket/prefix/",
}


@dataclass(frozen=True)
class Suggestion:
    """One check worth attaching: `kind` and `params` as an annotation takes them, and `why`,
    the words or the command of the item it was read from ("; "-joined when several agree)."""

    kind: str
    params: dict[str, str]
    why: str

    def pair(self) -> tuple[str, dict[str, str]]:
        return self.kind, dict(self.params)


def suggest_checks(text: str, body: str = "") -> list[Suggestion]:
    """Every check the item's commands and words support, commands first, each valid for its
    kind; identical suggestions merge (their `why`s joined)."""
    from . import registry

    text, body = text or "", body or ""
    found: list[tuple[str, dict[str, str], list[str]]] = []
    for kind, params, why in _from_commands(text, body):
        try:
            found.append((kind, registry.validate(kind, params), [why]))
        except ParamError:
            continue
    # What the words say about a check a command already gives (the same kind, and for tcp the
    # same probe) only adds its details (`require`, `min_days`, `status`) to that check: the
    # command names the target more precisely than the words.
    by_kind = {(kind, params.get("probe")): (params, whys) for kind, params, whys in reversed(found)}
    # The URL a command fetches is what the item's words are about too.
    hint = next((params["url"] for kind, params, _ in found if kind in ("http", "headers", "redirect")), None)
    for kind, params, why in _from_words(text, body, hint):
        try:
            params = registry.validate(kind, params)
        except ParamError:
            continue
        same = by_kind.get((kind, params.get("probe")))
        if same is None:
            found.append((kind, params, [why]))
            continue
        target, whys = same
        extra = {key: value for key, value in params.items() if key in DETAIL_KEYS and key not in target}
        try:
            target.update(registry.validate(kind, {**target, **extra}))
        except ParamError:
            pass
        whys.append(why)

    merged: dict[tuple, list] = {}
    for kind, params, whys in found:
        key = (kind, tuple(sorted(params.items())))
        if key not in merged:
            merged[key] = [kind, params, []]
        merged[key][2].extend(why for why in whys if why not in merged[key][2])
    return [Suggestion(kind, params, "; ".join(whys)) for kind, params, whys in merged.values()]


def suggest(text: str, body: str = "") -> list[tuple[str, dict[str, str]]]:
    """(kind, params) pairs of `suggest_checks`, in the same order (the editor's shape)."""
    return [suggestion.pair() for suggestion in suggest_checks(text, body)]


# Keys the words of an item may add to the check its command gives.
DETAIL_KEYS = ("require", "min_days", "status", "max_age_hours", "type")

# --- hosts and URLs -------------------------------------------------------------------------

URL = re.compile(r"(?:https?://|\{\{\s*\w+\s*\}\})[^\s`'\"<>)\]]*", re.I)
HOST_WORD = re.compile(
    r"(?<![\w@/.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?::(\d{1,5}))?(?![\w-])", re.I
)
# Words that look like host names in prose but are files.
FILE_SUFFIXES = {
    "pem", "crt", "cer", "key", "csr", "md", "txt", "json", "yaml", "yml", "toml", "ini", "conf", "cfg",
    "sh", "py", "js", "ts", "css", "html", "log", "gz", "tgz", "zip", "tar", "sql", "env", "lock", "service",
    "csv", "exe", "ps1", "example", "production", "local",
}
# Contract: these and their subdomains become {{ base_url }} in a URL.
BASE_DOMAINS = ("your-domain.com", "yourdomain.com", "example.com")
# Contract: NAME:PORT of these becomes http://{{ host }}:PORT.
LOCAL_NAMES = ("localhost", "your-server")
OTHER_PLACEHOLDERS = re.compile(
    r"^(?:127\.0\.0\.1|0\.0\.0\.0|::1|\[::1\]|server-?ip|server_ip|host|hostname|domain\.com|"
    r"(?:[\w-]+\.)*(?:your|my)[-_]?(?:domain|site|app|server|host|website)[\w-]*(?:\.[a-z]{2,})?|"
    r"(?:[\w-]+\.)*your[-_][\w-]+(?:\.[a-z]{2,})?|(?:[\w-]+\.)*example\.(?:org|net))$",
    re.I,
)


def _var(name: str) -> str:
    return "{{ " + name + " }}"


def _normal_placeholders(value: str) -> str:
    return PLACEHOLDER.sub(lambda m: _var(m.group(1)), value)


def _is_base_domain(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in BASE_DOMAINS)


def _is_placeholder_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return _is_base_domain(host) or host in LOCAL_NAMES or bool(OTHER_PLACEHOLDERS.match(host))


def _host(host: str, variable: str = "host") -> str:
    """A host name for a host-taking check: placeholders become the contract's variable."""
    if PLACEHOLDER.search(host):
        return _normal_placeholders(host)
    if _is_placeholder_host(host) or "." not in host and not host.replace(".", "").isdigit():
        # A bare word ("redis", "db", "postgres") is a container or machine name that only
        # means something where the command is typed.
        return _var(variable)
    return host.lower().rstrip(".")


def _clean_url_word(url: str) -> str:
    return _normal_placeholders(url.rstrip(".,;:!?*"))


def _url(url: str) -> str | None:
    """The URL a check should fetch, placeholders turned into the contract's variables."""
    url = _clean_url_word(url)
    if url.startswith("{{"):
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if _is_base_domain(host):
        return _var("base_url") + path
    if (host in LOCAL_NAMES or "." not in host and not host.startswith("[")) and port:
        # localhost:PORT, your-server:PORT, or a container's name: the service's own port.
        return f"http://{_var('host')}:{port}{path}"
    if _is_placeholder_host(host) or "." not in host and not host.startswith("["):
        return f"{parts.scheme}://{_var('host')}{f':{port}' if port else ''}{path}"
    return url


def _url_parts(url: str) -> tuple[str | None, str | None, str]:
    """(host for a host-taking check, port or None, path) of a URL as the author wrote it."""
    url = _clean_url_word(url)
    match = PLACEHOLDER.search(url)
    if match:
        rest, port = url[match.end():], None
        given = re.match(r":(\d{1,5})", rest)
        if given:
            port, rest = given.group(1), rest[given.end():]
        return _var("host"), port, rest or "/"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, None, "/"
    if not parts.hostname:
        return None, None, "/"
    return _host(parts.hostname), str(port) if port else None, parts.path or "/"


def _first_url(*texts: str) -> str | None:
    for text in texts:
        for match in URL.finditer(text):
            word = match.group(0)
            if word.startswith("{{") and not re.match(r"\{\{\s*(base_url|url|\w*_url)\s*\}\}", word):
                continue
            return word
    return None


def _host_words(text: str) -> list[tuple[str, str | None]]:
    hosts = []
    for match in HOST_WORD.finditer(text):
        name = match.group(1)
        if name.rsplit(".", 1)[-1].lower() in FILE_SUFFIXES:
            continue
        hosts.append((name, match.group(2)))
    return hosts


# --- commands -------------------------------------------------------------------------------

# curl options that take a value: their value is never the URL.
CURL_VALUE_OPTIONS = {
    "-H", "--header", "-o", "--output", "-u", "--user", "-d", "--data", "--data-raw", "--data-binary",
    "-X", "--request", "-m", "--max-time", "--connect-timeout", "-w", "--write-out", "-A", "--user-agent",
    "-e", "--referer", "-x", "--proxy", "--resolve", "--cacert", "--cert", "--key", "-b", "--cookie",
    "-c", "--cookie-jar", "-F", "--form", "--retry", "-T", "--upload-file", "-E", "--url-query",
    "--json", "--data-urlencode",
}
# A request with a body: the http check sends none, so it would not test the same thing.
CURL_BODY_OPTIONS = {"-d", "--data", "--data-raw", "--data-binary", "-F", "--form", "-T", "--upload-file",
                     "--json", "--data-urlencode"}
BARE_URL = re.compile(r"^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})(?::\d{1,5})?(?:/\S*)?$", re.I)
OPEN_URL = re.compile(
    r"\b(?:open|visit|go to|navigate to|browse to|access)\b\W{0,3}(" + URL.pattern + ")", re.I
)
HEADER_WORDS = re.compile(r"header|hsts|\bcsp\b|x-frame|x-content-type|content-security", re.I)
REDIRECT_WORDS = re.compile(r"redirect|\b30[1278]\b|enforc", re.I)
STATUS = re.compile(
    r"(?:\breturns?|\breturning|\bexpect(?:ed|s)?|\bstatus(?: code)?|\banswers?|\bresponds?(?: with)?|"
    r"\bshould (?:be|give|return))\W{0,3}(?:HTTP\W{0,2})?([1-5]\d\d)\b|\bHTTP/[\d.]+ ([1-5]\d\d)\b",
    re.I,
)


def _from_commands(text: str, body: str) -> list[tuple[str, dict[str, str], str]]:
    prose = f"{text}\n{body}"
    found = []
    for line in _command_lines(prose):
        words = _split(line)
        for start, word in enumerate(words):
            name = word.rsplit("/", 1)[-1].lower()
            rest = words[start + 1:]
            if name == "curl":
                made = _curl(rest, prose)
            elif name in ("wget", "invoke-webrequest", "iwr"):
                made = _fetch(rest)
            elif name == "redis-cli":
                made = _redis_cli(rest)
            elif name == "pg_isready":
                made = _pg_isready(rest)
            elif name in ("dig", "nslookup"):
                made = _dig(rest) if name == "dig" else _nslookup(rest)
            elif name == "openssl" and rest[:1] == ["s_client"]:
                made = _openssl(rest[1:])
            elif name == "aws" and rest[:2] == ["s3", "ls"]:
                made = _aws_s3_ls(rest[2:])
            elif name == "ls":
                made = _ls_backups(rest)
            elif name == "test-netconnection":
                made = _test_netconnection(rest)
            else:
                continue
            at = line.find(word)
            why = " ".join((line[at:] if at >= 0 else line).split())
            found.extend((kind, params, why) for kind, params in made)
            break  # one program per command: `aws s3 ls` is not `ls`
    for match in OPEN_URL.finditer(prose):
        url = _url(match.group(1))
        if url:
            found.append(("http", {"url": url}, " ".join(match.group(0).split())))
    return found


def _command_lines(text: str) -> list[str]:
    # Shell continuations and `cmd && cmd` chains: one logical command per entry.
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for line in joined.splitlines():
        # A shell comment is prose, not part of the command.
        line = re.sub(r"(^|\s)#\s.*$", "", line)
        for part in re.split(r"&&|\|\||;|\|", line):
            part = part.strip().strip("`").strip()
            if part:
                lines.append(part)
    return lines


def _split(line: str) -> list[str]:
    # "{{ base_url }}" would fall apart at its spaces.
    line = PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", line)
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    return [word.strip("`") for word in words]


def _url_word(word: str) -> str | None:
    if URL.match(word):
        return word
    if BARE_URL.match(word) and word.rsplit("/", 1)[0].rsplit(".", 1)[-1].lower() not in FILE_SUFFIXES:
        return "http://" + word
    return None


def _expected_status(prose: str) -> str | None:
    for match in STATUS.finditer(prose):
        code = match.group(1) or match.group(2)
        if code != "200":
            return code
    return None


def _curl(words: list[str], prose: str) -> list[tuple[str, dict[str, str]]]:
    flags: set[str] = set()
    method = raw = None
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--"):
            flags.add(word.split("=", 1)[0])
            if word in CURL_VALUE_OPTIONS and index < len(words):
                if word == "--request":
                    method = words[index].upper()
                index += 1
        elif word.startswith("-") and len(word) > 1:
            # A cluster such as -fsSo: the first option that takes a value ends it, and
            # its value is the rest of the cluster or the next word.
            for position, letter in enumerate(word[1:], start=2):
                flags.add(f"-{letter}")
                if f"-{letter}" in CURL_VALUE_OPTIONS:
                    value = word[position:]
                    if not value and index < len(words):
                        value = words[index]
                        index += 1
                    if letter == "X":
                        method = value.upper()
                    break
        elif raw is None and _url_word(word):
            raw = _url_word(word)
    if raw is None or flags & CURL_BODY_OPTIONS:
        return []
    url = _url(raw)
    if url is None:
        return []
    if raw.lower().startswith("http://") and REDIRECT_WORDS.search(prose) and re.search(r"\bhttps\b", prose, re.I):
        return [("redirect", {"url": _redirect_url(raw)})]
    if "-I" in flags or "--head" in flags:
        if HEADER_WORDS.search(prose) or not ({"-f", "--fail"} & flags):
            found = [("headers", {"url": url})] if HEADER_WORDS.search(prose) else []
            if not found:
                found = [("http", {"url": url, "method": "HEAD"})]
            return found
        return [("http", {"url": url, "method": "HEAD"})]
    params = {"url": url}
    if method and method != "GET":
        params["method"] = method
    status = _expected_status(prose)
    if status:
        params["status"] = status
    return [("http", params)]


def _fetch(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    for word in words:
        raw = _url_word(word)
        if raw:
            url = _url(raw)
            return [("http", {"url": url})] if url else []
    return []


def _redis_cli(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    if not any(word.lower() == "ping" for word in words):
        return []
    host, port = _var("redis_host"), None
    for index, word in enumerate(words[:-1]):
        value = words[index + 1]
        if word == "-h":
            host = _host(value, "redis_host")
        elif word == "-p":
            port = value
        elif word == "-u" and value.startswith(("redis://", "rediss://")):
            parts = urlsplit(value)
            host, port = _host(parts.hostname or "", "redis_host"), str(parts.port or 6379)
    if host == _var("redis_host") and port and port != "6379":
        port = None  # the port of a local instance says nothing about the real one
    return [("tcp", {"host": host, "port": port or "6379", "probe": "redis"})]


def _pg_isready(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    host, port = _var("db_host"), None
    for index, word in enumerate(words):
        value = words[index + 1] if index + 1 < len(words) else ""
        if word in ("-h", "--host"):
            host = _host(value, "db_host")
        elif word.startswith("--host="):
            host = _host(word.split("=", 1)[1], "db_host")
        elif word in ("-p", "--port"):
            port = value
        elif word.startswith("--port="):
            port = word.split("=", 1)[1]
    if host == _var("db_host") and port and port != "5432":
        port = None
    return [("tcp", {"host": host, "port": port or "5432", "probe": "postgres"})]


DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA")


def _dns_params(name: str, rdtype: str | None, server: str | None) -> dict[str, str]:
    params = {"name": _host(name.rstrip("."))}
    if rdtype and rdtype != "A":
        params["type"] = rdtype
    if server and not _is_placeholder_host(server) and re.fullmatch(r"[\w.:-]+", server) and (
        HOST_WORD.fullmatch(server) or re.fullmatch(r"[\d.]+(?::\d+)?|[0-9a-f:]+", server, re.I)
    ):
        params["server"] = server
    return params


def _dig(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    name = rdtype = server = None
    skip = False
    for index, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in ("-t", "-p", "-b", "-f", "-k", "-q", "-c", "-y"):
            if word == "-t" and index + 1 < len(words):
                rdtype = words[index + 1].upper()
            skip = True
        elif word.startswith("@"):
            server = word[1:]
        elif word.startswith(("+", "-")):
            continue
        elif word.upper() in DNS_TYPES and name is not None or word.upper() in DNS_TYPES[1:]:
            rdtype = word.upper()
        elif name is None and (HOST_WORD.fullmatch(word) or PLACEHOLDER.search(word)):
            name = word
    return [("dns", _dns_params(name, rdtype, server))] if name else []


def _nslookup(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    name = rdtype = server = None
    for word in words:
        lowered = word.lower()
        if lowered.startswith(("-type=", "-query=", "-q=")):
            rdtype = word.split("=", 1)[1].upper()
        elif word.startswith("-"):
            continue
        elif name is None and (HOST_WORD.fullmatch(word) or PLACEHOLDER.search(word)):
            name = word
        elif name is not None and server is None:
            server = word
    return [("dns", _dns_params(name, rdtype, server))] if name else []


def _openssl(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    for index, word in enumerate(words[:-1]):
        if word == "-connect":
            target = words[index + 1]
            host, _, port = target.rpartition(":") if ":" in target else (target, "", "443")
            params = {"host": _host(host)}
            if port and port != "443":
                params["port"] = port
            return [("tls", params)]
    return []


def _aws_s3_ls(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    if any(word.lower().startswith("s3://") for word in words):
        return [("backup", {"url": _var("backup_url")})]
    return []


def _ls_backups(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    if any(not word.startswith("-") and re.search(r"backup", word, re.I) for word in words):
        return [("backup", {"path": _var("backup_path")})]
    return []


def _test_netconnection(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    host = port = None
    for index, word in enumerate(words):
        value = words[index + 1] if index + 1 < len(words) else None
        lowered = word.lower()
        if lowered in ("-computername", "-cn") and value:
            host = value
        elif lowered == "-port" and value:
            port = value
        elif not word.startswith("-") and host is None and index == 0:
            host = word
    if not host or not port:
        return []
    return [("tcp", {"host": _host(host), "port": port})]


# --- words ----------------------------------------------------------------------------------

# What no kind can prove, or what an item only plans, documents or monitors.
NOT_PROVABLE = re.compile(
    r"mongo|rabbit|clickhouse|kafka|elastic|mysql|memcache|uptime|monitor|restor(?!able)|load[- ]test|"
    r"document|runbook|readme|guide|dashboard|\bscript\b|wait for|procedure|\bplan\b|drill|"
    r"\bprocess\b|penetration|\bpolicy\b|policies|\.env\b|variable|recover",
    re.I,
)
CERT = re.compile(r"\b(ssl|tls|https)\b|certificate|\bcerts?\b", re.I)
CERT_STATE = re.compile(
    r"valid|active|expir|renew|obtain|install|configur|enabl|working|warning|issued|in place|access|secure[sd]?\b",
    re.I,
)
CERT_NOT = re.compile(r"\bfiles?\b|\blines?\b|\bport\b|upload|firewall|\ballow", re.I)
MIN_DAYS = re.compile(r"(\d{1,4})\+?\s*days", re.I)
HTTPS_ENFORCED = re.compile(r"redirect|enforc|\bonly\b|\bforced?\b", re.I)
SECURITY_HEADERS = re.compile(
    r"security[- ]headers|securityheaders|\bhsts\b|\b(csp|content-security-policy|x-frame-options|"
    r"x-content-type-options|strict-transport-security)\b.*\bheaders?\b",
    re.I,
)
HEADER_NAMES = (
    ("strict-transport-security", re.compile(r"\bhsts\b|strict-transport-security", re.I)),
    ("content-security-policy", re.compile(r"\bcsp\b|content-security-policy", re.I)),
    ("x-frame-options", re.compile(r"x-frame-options", re.I)),
    ("x-content-type-options", re.compile(r"x-content-type-options", re.I)),
    ("referrer-policy", re.compile(r"referrer-policy", re.I)),
    ("permissions-policy", re.compile(r"permissions-policy", re.I)),
)
HEALTH = re.compile(r"\bhealth\b|health[- ]?checks?|liveness|readiness|/healthz?\b|/readyz|/livez", re.I)
HEALTH_NOT = re.compile(
    r"\bcontainers?\b|docker|\bpods?\b|websocket|database|\bdb\b|cluster|kubernetes|\bk8s\b|threshold|review|"
    r"keyboard|screen reader|\ba11y\b",
    re.I,
)
SITE_UP = re.compile(
    r"\b(homepage|home page|web interface|website|web site|site|application|app|production url|"
    r"front-?end|landing page|https)\b.{0,40}?\b(loads?|accessible|reachable|is up|is live|up and running|"
    r"responds|available)\b|\b(server|service|site|api|app|application|website)\s+(is\s+)?down\b|"
    r"\bsmoke[- ]test",
    re.I,
)
PATH = re.compile(r"(?:^|[\s(`])(/[A-Za-z0-9_.~/-]*)")
REDIS = re.compile(r"\bredis\b", re.I)
REDIS_STATE = re.compile(r"connect|reachab|respond|\bping|\bup\b|running|accessib|answer|working|available", re.I)
REDIS_NOT = re.compile(r"password|persist|maxmemory|provision|failover|cluster|install|evict|_url|\burl\b", re.I)
DATABASE = re.compile(r"\b(database|postgres(?:ql)?|db|pg)\b", re.I)
DATABASE_STATE = re.compile(r"connect|\baccepting\b|\breachable\b|postgres(?:ql)? is (?:up|running|ready)", re.I)
DATABASE_NOT = re.compile(r"pool|string|credential|secret|password|\burl\b|_url|limit|\bmax", re.I)
DNS = re.compile(
    r"\bdns\b|\b(a|aaaa|cname|mx|txt|ns)\s+records?\b|\bcname\b|propagat|nameservers?|\bsubdomain\b|"
    r"\bdomain\b.{0,40}?\b(points?|pointing|resolves?|connected)\b",
    re.I,
)
DNS_NOT = re.compile(r"register|purchas|\bbuy|renew|spf|dkim|dmarc|third-party|prefetch|preconnect|handshake", re.I)
BACKUP = re.compile(r"\bbackups?\b|\bback(?:ed)? up\b|\bsnapshots?\b", re.I)
BACKUP_STATE = re.compile(
    r"running|automat|\bauto\b|recent|complet|created|verif|enabled|working|exist|taken|upload|daily|"
    r"nightly|hourly|weekly|schedul|succe|fail|manual|\btest|final|configured|latest|fresh",
    re.I,
)
BACKUP_NOT = re.compile(
    r"retention|strateg|\biam\b|lifecycle|older than|delete|encrypt|install|location|rotation|glacier|"
    r"if needed|bucket|\bcli\b|\bcode\b|version control",
    re.I,
)


def _plain(text: str) -> str:
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"[*_`]{1,3}", "", text)
    return " ".join(text.split())


def _from_words(text: str, body: str, hint: str | None = None) -> list[tuple[str, dict[str, str], str]]:
    words = _plain(text)
    if not words or NOT_PROVABLE.search(words):
        return []
    why = words if len(words) <= 120 else words[:117] + "..."
    found: list[tuple[str, dict[str, str], str]] = []
    # A URL in the item's own text is its target; one in its body is only when it is a
    # placeholder (a real host there is mostly a reference link, not the thing to check).
    url = _first_url(text) or hint
    if url is None:
        candidate = _first_url(body)
        if candidate and (candidate.startswith("{{") or (_url(candidate) or "").find("{{") >= 0):
            url = candidate

    def add(kind: str, params: dict[str, str]) -> None:
        found.append((kind, params, why))

    if re.search(r"\bhttps\b", words, re.I) and HTTPS_ENFORCED.search(words):
        add("redirect", {"url": _redirect_url(url)})
    if (CERT.search(words) and CERT_STATE.search(words) and not CERT_NOT.search(words)) or re.search(
        r"ssllabs|auto-?renew", words, re.I
    ):
        add("tls", _tls_params(words, url))
    if SECURITY_HEADERS.search(words):
        params = {"url": _url(url) if url else _var("base_url") + "/"}
        named = [name for name, pattern in HEADER_NAMES if pattern.search(words)]
        if named:
            params["require"] = ",".join(named)
        add("headers", params)
    if HEALTH.search(words) and not HEALTH_NOT.search(words):
        add("http", _http_params(words, body, url, "/health"))
    elif SITE_UP.search(words) and not HEALTH_NOT.search(words):
        add("http", _http_params(words, body, url, "/"))
    if REDIS.search(words) and REDIS_STATE.search(words) and not REDIS_NOT.search(words):
        add("tcp", {"host": _var("redis_host"), "port": "6379", "probe": "redis"})
    if DATABASE.search(words) and DATABASE_STATE.search(words) and not DATABASE_NOT.search(words):
        add("tcp", {"host": _var("db_host"), "port": "5432", "probe": "postgres"})
    if DNS.search(words) and not DNS_NOT.search(words):
        add("dns", _dns_from_words(words))
    if BACKUP.search(words) and not BACKUP_NOT.search(words) and (
        BACKUP_STATE.search(words) or re.match(r"back(?:ed)? ?ups?\b", words, re.I)
    ):
        add("backup", _backup_params(words, body))
    return found


def _redirect_url(url: str | None) -> str:
    if url:
        host, port, path = _url_parts(url)
        if host:
            if host == _var("host") or port in (None, "443"):
                return f"http://{host}{path}"
            return f"http://{host}:{port}{path}"
    return f"http://{_var('host')}/"


def _tls_params(words: str, url: str | None) -> dict[str, str]:
    params: dict[str, str] = {"host": _var("host")}
    if url:
        host, port, _ = _url_parts(url)
        if host:
            params["host"] = host
            if port and port != "443":
                params["port"] = port
    else:
        hosts = [(name, port) for name, port in _host_words(words) if not re.search(r"ssllabs", name, re.I)]
        if hosts:
            params["host"] = _host(hosts[0][0])
            if hosts[0][1] and hosts[0][1] != "443":
                params["port"] = hosts[0][1]
    days = MIN_DAYS.search(words)
    if days and 0 < int(days.group(1)) <= 365:
        params["min_days"] = str(int(days.group(1)))
    return params


def _http_params(words: str, body: str, url: str | None, default_path: str) -> dict[str, str]:
    if url:
        target = _url(url) or _var("base_url") + default_path
    else:
        path = PATH.search(words)
        target = _var("base_url") + (path.group(1) if path and len(path.group(1)) > 1 else default_path)
    params = {"url": target}
    status = _expected_status(f"{words}\n{body}")
    if status:
        params["status"] = status
    return params


def _dns_from_words(words: str) -> dict[str, str]:
    rdtype = "A"
    if re.search(r"\baaaa\b", words, re.I):
        rdtype = "AAAA"
    elif re.search(r"\bmx\b", words, re.I):
        rdtype = "MX"
    elif re.search(r"\bcname\b", words, re.I) and not re.search(r"\ba records?\b", words, re.I):
        rdtype = "CNAME"
    elif re.search(r"\btxt\b", words, re.I):
        rdtype = "TXT"
    elif re.search(r"\bns records?\b|nameservers?", words, re.I):
        rdtype = "NS"
    hosts = _host_words(words)
    params = {"name": _host(hosts[0][0]) if hosts else _var("host")}
    if rdtype != "A":
        params["type"] = rdtype
    return params


def _backup_params(words: str, body: str) -> dict[str, str]:
    if re.search(r"\bs3\b|s3://", f"{words}\n{body}", re.I):
        params = {"url": _var("backup_url")}
    else:
        params = {"path": _var("backup_path")}
    if re.search(r"\bhourly\b", words, re.I):
        params["max_age_hours"] = "2"
    elif re.search(r"\bweekly\b", words, re.I):
        params["max_age_hours"] = "170"
    return params
