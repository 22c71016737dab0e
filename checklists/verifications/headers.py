"""`headers`: every required response header is present (names compared without case)."""

from __future__ import annotations

import re

from . import net
from .base import (
    CheckContext,
    Outcome,
    ParamError,
    check_keys,
    clean_url,
    failed,
    has_placeholder,
    passed,
)

KIND = "headers"
DEFAULT_REQUIRE = "strict-transport-security,content-security-policy,x-frame-options,x-content-type-options"
KEYS: dict[str, str | None] = {"url": None, "require": DEFAULT_REQUIRE}
REQUIRED = frozenset({"url"})
TOKEN = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


def clean_require(key: str, value: str) -> str:
    if has_placeholder(value):
        return value
    names = list(dict.fromkeys(name.strip().lower() for name in value.split(",") if name.strip()))
    if not names:
        raise ParamError(f"{key}: name at least one header")
    for name in names:
        if not TOKEN.match(name):
            raise ParamError(f"{key}: {name!r} is not a header name")
    return ",".join(names)


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["url"] = clean_url("url", clean["url"])
    if "require" in clean:
        clean["require"] = clean_require("require", clean["require"])
    return clean


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    answer = net.fetch(params["url"], ctx.deadline, read_body=False)
    required = params["require"].split(",")
    present = {name.lower() for name in answer.headers}
    missing = [name for name in required if name not in present]
    evidence = {
        "status_code": answer.status,
        "final_url": answer.url,
        "hops": answer.hops,
        "present": {name: answer.headers[name] for name in required if name in present},
        "missing": missing,
    }
    if missing:
        return failed(f"{answer.url} is missing {len(missing)} of {len(required)} headers: {', '.join(missing)}",
                      **evidence)
    return passed(f"{answer.url} sends all {len(required)} required headers", **evidence)
