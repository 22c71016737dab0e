"""`http`: the URL answers with the expected status (and text) within `max_ms`."""

from __future__ import annotations

import re

from . import net
from .base import (
    CheckContext,
    Outcome,
    ParamError,
    check_keys,
    clean_choice,
    clean_int,
    clean_number,
    clean_url,
    failed,
    has_placeholder,
    passed,
)

KIND = "http"
KEYS: dict[str, str | None] = {
    "url": None,
    "method": "GET",
    "status": "200",
    "contains": None,
    "max_ms": None,
    "timeout": None,
}
REQUIRED = frozenset({"url"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_TIMEOUT = 120
EXCERPT = 200


def clean_status(key: str, value: str) -> str:
    if has_placeholder(value):
        return value
    normal = value.lower()
    if not re.fullmatch(r"[1-5](\d\d|xx)", normal):
        raise ParamError(f"{key}: {value!r} is not a status such as 200 or 2xx")
    return normal


def clean_timeout(key: str, value: str) -> str:
    return clean_number(key, value, 0.1, MAX_TIMEOUT)


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["url"] = clean_url("url", clean["url"])
    if "method" in clean:
        clean["method"] = clean_choice("method", clean["method"], METHODS, upper=True)
    if "status" in clean:
        clean["status"] = clean_status("status", clean["status"])
    if "max_ms" in clean:
        clean["max_ms"] = clean_int("max_ms", clean["max_ms"], 1, MAX_TIMEOUT * 1000)
    if "timeout" in clean:
        clean["timeout"] = clean_timeout("timeout", clean["timeout"])
    return clean


def status_matches(expected: str, code: int) -> bool:
    if expected.endswith("xx"):
        return str(code)[0] == expected[0]
    return code == int(expected)


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    answer = net.fetch(params["url"], ctx.deadline, method=params["method"])
    evidence = {
        "status_code": answer.status,
        "latency_ms": answer.elapsed_ms,
        "final_url": answer.url,
        "hops": answer.hops,
    }
    if answer.body or answer.truncated:
        # The raw bytes read: the check asks for identity and never inflates a compressed answer.
        evidence["body_bytes"] = len(answer.body)
        evidence["body_truncated"] = answer.truncated
    encoding = _encoding(answer.headers)
    if encoding:
        evidence["content_encoding"] = encoding
        text = ""
    else:
        text = answer.body.decode(_charset(answer.headers), errors="replace")
    problems = []
    if not status_matches(params["status"], answer.status):
        problems.append(f"answered {answer.status}, expected {params['status']}")
    if "contains" in params and params["contains"] not in text:
        if encoding:
            problems.append(f"the answer is {encoding}-encoded although the check asked for identity; "
                            f"it is not decoded, so {params['contains']!r} cannot be looked for")
        else:
            where = f" in its first {_size(len(answer.body))}" if answer.truncated else ""
            problems.append(f"the answer does not contain {params['contains']!r}{where}")
    if "max_ms" in params and answer.elapsed_ms > int(params["max_ms"]):
        problems.append(f"took {answer.elapsed_ms} ms, more than max_ms {params['max_ms']}")
    if problems:
        if encoding:
            evidence["body_excerpt"] = f"[{len(answer.body)} bytes of {encoding}-encoded body, not decoded]"
        else:
            evidence["body_excerpt"] = excerpt(text)
        return failed(f"{answer.url}: " + "; ".join(problems), **evidence)
    via = f" after {len(answer.hops)} redirect{'s' if len(answer.hops) != 1 else ''}" if answer.hops else ""
    return passed(f"{answer.url} answered {answer.status} in {answer.elapsed_ms} ms{via}", **evidence)


def _charset(headers) -> str:
    match = re.search(r"charset=([\w.:-]+)", headers.get("Content-Type", ""), re.I)
    if match:
        try:
            "".encode(match.group(1))
            return match.group(1)
        except LookupError:
            pass
    return "utf-8"


def _encoding(headers) -> str:
    """The Content-Encoding the server applied anyway, "" for none (or identity)."""
    value = ",".join(part.strip().lower() for part in headers.get("Content-Encoding", "").split(",") if part.strip())
    return "" if value in ("", "identity") else value


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"
