"""Checks worth suggesting for an item, read from the commands and words its author wrote.

Pure text in, suggestions out: the template editor offers them, a person attaches them.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from .base import PLACEHOLDER, ParamError

URL = re.compile(r"(?:https?://|\{\{\s*\w+\s*\}\})[^\s`'\"<>)\]]*", re.I)
HOST_WORD = re.compile(
    r"(?<![\w@/.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?::(\d{1,5}))?(?![\w-])", re.I
)
# Words that look like host names in prose but are files.
FILE_SUFFIXES = {
    "pem", "crt", "cer", "key", "csr", "md", "txt", "json", "yaml", "yml", "toml", "ini", "conf", "cfg",
    "sh", "py", "js", "css", "html", "log", "gz", "tgz", "zip", "tar", "sql", "env", "lock", "service",
}
CERT_WORDS = re.compile(r"\b(ssl|tls|https)\b|certificate|\bcerts?\b", re.I)
EXPIRY_WORDS = re.compile(r"expir|renew|valid|days? (left|remaining)|not after", re.I)
MIN_DAYS = re.compile(r"(\d{1,4})\+?\s*days", re.I)

# curl options that take a value: their value is never the URL.
CURL_VALUE_OPTIONS = {
    "-H", "--header", "-o", "--output", "-u", "--user", "-d", "--data", "--data-raw", "--data-binary",
    "-X", "--request", "-m", "--max-time", "--connect-timeout", "-w", "--write-out", "-A", "--user-agent",
    "-e", "--referer", "-x", "--proxy", "--resolve", "--cacert", "--cert", "--key", "-b", "--cookie",
    "-c", "--cookie-jar", "-F", "--form", "--retry", "-T", "--upload-file", "-E", "--url-query",
}
REDIS_VALUE_OPTIONS = {"-h", "-p", "-a", "-u", "-n", "-s", "--user", "--pass", "-r", "-i", "-t"}


def suggest(text: str, body: str) -> list[tuple[str, dict[str, str]]]:
    """(kind, params) pairs, in the order their evidence appears, each valid for its kind."""
    from . import registry

    found: list[tuple[str, dict[str, str]]] = []
    for line in _command_lines(f"{text}\n{body}"):
        words = _split(line)
        for start, word in enumerate(words):
            name = word.rsplit("/", 1)[-1]
            if name == "curl":
                found.extend(_curl(words[start + 1:]))
            elif name == "redis-cli":
                found.extend(_redis_cli(words[start + 1:]))
    tls = _tls(text, body)
    if tls:
        found.append(tls)

    unique, seen = [], set()
    for kind, params in found:
        try:
            params = registry.validate(kind, params)
        except ParamError:
            continue
        key = (kind, tuple(sorted(params.items())))
        if key not in seen:
            seen.add(key)
            unique.append((kind, params))
    return unique


def _command_lines(text: str) -> list[str]:
    # Shell continuations and `cmd && cmd` chains: one logical command per entry.
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            part = part.strip().strip("`").strip()
            if part:
                lines.append(part)
    return lines


def _split(line: str) -> list[str]:
    # "{{ base_url }}" would fall apart at its spaces.
    line = PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", line)
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _flags(word: str) -> set[str]:
    if word.startswith("--"):
        return {word}
    if word.startswith("-") and len(word) > 1:
        return {f"-{ch}" for ch in word[1:]}
    return set()


def _curl(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    flags: set[str] = set()
    method = url = None
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--"):
            flags.add(word)
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
        elif url is None and URL.match(word):
            url = word
    if url is None:
        return []
    found = []
    if "-I" in flags or "--head" in flags:
        found.append(("headers", {"url": url}))
        if "-f" in flags or "--fail" in flags:
            found.append(("http", {"url": url, "method": "HEAD"}))
    elif flags & {"-f", "--fail", "--fail-with-body"}:
        params = {"url": url}
        if method and method != "GET":
            params["method"] = method
        found.append(("http", params))
    return found


def _redis_cli(words: list[str]) -> list[tuple[str, dict[str, str]]]:
    if not any(word.lower() == "ping" for word in words):
        return []
    host = port = None
    for index, word in enumerate(words[:-1]):
        if word == "-h":
            host = words[index + 1]
        elif word == "-p":
            port = words[index + 1]
        elif word == "-u" and words[index + 1].startswith(("redis://", "rediss://")):
            parts = urlsplit(words[index + 1])
            host, port = parts.hostname, str(parts.port or 6379)
    if host is None:
        # Without a visible host the command runs against the box it is typed on, which is
        # not where the check would run.
        return []
    return [("tcp", {"host": host, "port": port or "6379", "probe": "redis"})]


def _tls(text: str, body: str) -> tuple[str, dict[str, str]] | None:
    prose = f"{text}\n{body}"
    if not (CERT_WORDS.search(prose) and EXPIRY_WORDS.search(prose)):
        return None
    host, port = _first_host(prose)
    if host is None:
        return None
    params = {"host": host}
    if port and port != "443":
        params["port"] = port
    days = MIN_DAYS.search(prose)
    if days and 0 < int(days.group(1)) <= 365:
        params["min_days"] = str(int(days.group(1)))
    return "tls", params


def _first_host(prose: str) -> tuple[str | None, str | None]:
    for match in URL.finditer(prose):
        parts = urlsplit(match.group(0))
        if parts.scheme and parts.hostname:
            try:
                port = parts.port
            except ValueError:
                port = None
            return parts.hostname, str(port) if port else None
    for match in PLACEHOLDER.finditer(prose):
        if re.search(r"host|domain", match.group(1), re.I):
            return match.group(0), None
    for match in HOST_WORD.finditer(prose):
        if match.group(1).rsplit(".", 1)[-1].lower() not in FILE_SUFFIXES:
            return match.group(1).lower(), match.group(2)
    return None, None
