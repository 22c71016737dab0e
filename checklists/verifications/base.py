"""The one interface every check kind implements.

A kind is a module under checklists/verifications/ exposing:

    KIND: str                                    # "http", "tls", ...
    KEYS: dict[str, str | None]                  # allowed keys -> default (None: required/optional, no default)
    REQUIRED: frozenset[str]
    def validate(params: dict[str, str]) -> dict[str, str]
        # normalise and check the raw key=value strings; raise ParamError with a message a
        # template author understands. Values holding "{{ name }}" are checked only as far as
        # they can be before the run's variables fill them.
    def run(params: dict[str, str], ctx: CheckContext) -> Outcome
        # params are already filled, validated and completed with defaults; all network access
        # goes through checklists.verifications.net so the deny list and the deadline always apply.

The helpers below are the shared vocabulary of `validate()`: each one names the key in its
error, because the author reads the message next to a line of Markdown, not a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .net import Deadline


class ParamError(ValueError):
    """A check's parameters are wrong; the message names the key and what is expected."""


class MissingVariable(ParamError):
    """A `{{ name }}` placeholder has no value among the run's variables."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"variable {name!r} is not set for this run")


@dataclass(frozen=True)
class Outcome:
    status: str  # "passed" | "failed" | "error"
    message: str
    evidence: dict = field(default_factory=dict)
    duration_ms: int = 0


PASSED, FAILED, ERROR = "passed", "failed", "error"


def passed(message: str, **evidence) -> Outcome:
    return Outcome(PASSED, message, evidence)


def failed(message: str, **evidence) -> Outcome:
    return Outcome(FAILED, message, evidence)


def errored(message: str, **evidence) -> Outcome:
    return Outcome(ERROR, message, evidence)


@dataclass
class CheckContext:
    variables: Mapping[str, str]
    secrets: tuple[str, ...]
    deadline: Deadline


# --- placeholders ---------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def has_placeholder(value: str) -> bool:
    return PLACEHOLDER.search(value) is not None


def literal_prefix(value: str) -> str:
    """The text before the first placeholder: the only part whose meaning is already fixed."""
    match = PLACEHOLDER.search(value)
    return value if match is None else value[: match.start()]


def literal_parts(value: str) -> list[str]:
    return [part for part in PLACEHOLDER.split(value)[::2] if part]


# --- key checks -----------------------------------------------------------------------------


def check_keys(kind: str, params: Mapping[str, str], keys: Mapping[str, str | None], required) -> dict[str, str]:
    """Lower-case the keys, strip the values, refuse unknown, missing and empty ones.

    Messages leave out the kind: the Markdown importer puts "http check:" in front.
    """
    clean: dict[str, str] = {}
    for raw_key, raw_value in params.items():
        key = str(raw_key).strip().lower()
        if key not in keys:
            raise ParamError(f"unknown key {key!r}; {kind} checks take {', '.join(keys)}")
        if key in clean:
            raise ParamError(f"key {key!r} is given twice")
        value = str(raw_value).strip()
        if not value:
            raise ParamError(f"{key}: empty value")
        clean[key] = value
    for key in required:
        if key not in clean:
            raise ParamError(f"missing required key {key!r}")
    return clean


def clean_int(key: str, value: str, low: int, high: int) -> str:
    if has_placeholder(value):
        if not all(part.isascii() and part.isdigit() for part in literal_parts(value)):
            raise ParamError(f"{key}: {value!r} is not a whole number")
        return value
    if not (value.isascii() and value.isdigit()):
        raise ParamError(f"{key}: {value!r} is not a whole number")
    number = int(value)
    if not low <= number <= high:
        raise ParamError(f"{key}: {number} is out of range ({low}-{high})")
    return str(number)


def clean_port(key: str, value: str) -> str:
    try:
        return clean_int(key, value, 1, 65535)
    except ParamError:
        raise ParamError(f"{key}: {value!r} is not a port (1-65535)") from None


_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def clean_number(key: str, value: str, low: float, high: float) -> str:
    if has_placeholder(value):
        if not all(re.fullmatch(r"[\d.]*", part) for part in literal_parts(value)):
            raise ParamError(f"{key}: {value!r} is not a number")
        return value
    if not _NUMBER.match(value):
        raise ParamError(f"{key}: {value!r} is not a number")
    number = float(value)
    if not low <= number <= high:
        raise ParamError(f"{key}: {value} is out of range ({low:g}-{high:g})")
    return value


def clean_choice(key: str, value: str, choices, *, upper: bool = False) -> str:
    if has_placeholder(value):
        return value
    normal = value.upper() if upper else value.lower()
    if normal not in choices:
        raise ParamError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return normal


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9_.:\[\]-]*$")


def is_host(value: str) -> bool:
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in name.split("."))


def clean_host(key: str, value: str) -> str:
    if "://" in value or "/" in value:
        raise ParamError(f"{key}: give a host name such as app.example.com, not a URL ({value!r})")
    if has_placeholder(value):
        if not all(_HOST_CHARS.match(part) for part in literal_parts(value)):
            raise ParamError(f"{key}: {value!r} is not a host name")
        return value
    if not is_host(value):
        raise ParamError(f"{key}: {value!r} is not a host name or IP address")
    if value.startswith("["):
        value = value[1:-1]
    return value.lower()


def clean_url(key: str, value: str, schemes=("http", "https")) -> str:
    """An absolute URL whose scheme is one of `schemes`; with placeholders, as far as known."""
    wanted = " and ".join(schemes) if len(schemes) > 1 else schemes[0]
    only = f"{key}: only {wanted} URLs are allowed, not {value!r}" if len(schemes) > 1 else (
        f"{key}: must be an {schemes[0]}:// URL, not {value!r}"
    )
    if any(ch.isspace() for part in literal_parts(value) for ch in part):
        raise ParamError(f"{key}: a URL cannot contain spaces ({value!r})")
    if has_placeholder(value):
        prefix = literal_prefix(value).lower()
        if ":" in prefix:
            if prefix.split(":", 1)[0] not in schemes:
                raise ParamError(only)
        elif prefix and not any(f"{scheme}://".startswith(prefix) for scheme in schemes):
            raise ParamError(only)
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise ParamError(f"{key}: {value!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes:
        raise ParamError(only)
    if not parts.hostname or not is_host(parts.hostname):
        raise ParamError(f"{key}: {value!r} has no valid host")
    return value
