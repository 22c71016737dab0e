"""Kind name -> module, and the one entry point a task calls: `run()`.

`validate()` is what import and the template editor call: it normalises what the author wrote
and adds no defaults (export writes back what the author wrote). `run()` fills the run's
variables, validates again, runs the kind against one deadline and never raises.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import replace
from urllib.parse import quote, quote_plus

from django.conf import settings

from . import backup, dns, headers, http, net, redirect, tcp, tls
from .base import (
    PLACEHOLDER,
    CheckContext,
    MissingVariable,
    Outcome,
    ParamError,
    errored,
)

logger = logging.getLogger(__name__)

KINDS = {module.KIND: module for module in (http, tls, backup, headers, redirect, dns, tcp)}
REDACTED = "[secret]"


def _module(kind: str):
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise ParamError(f"unknown check kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}") from None


def validate(kind: str, params: Mapping[str, str]) -> dict[str, str]:
    return _module(kind).validate(dict(params))


def with_defaults(kind: str, params: Mapping[str, str]) -> dict[str, str]:
    module = _module(kind)
    defaults = {key: value for key, value in module.KEYS.items() if value is not None}
    return {**defaults, **params}


def fill(params: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    def value_of(match) -> str:
        name = match.group(1)
        if name not in variables or variables[name] is None:
            raise MissingVariable(name)
        return str(variables[name])

    # One pass only: a variable whose value holds "{{ x }}" is text, not another placeholder.
    return {key: PLACEHOLDER.sub(value_of, value) for key, value in params.items()}


def placeholders(params: Mapping[str, str]) -> list[str]:
    """The variable names a check needs, in order of first use (for the run form)."""
    names = []
    for value in params.values():
        names.extend(PLACEHOLDER.findall(value))
    return list(dict.fromkeys(names))


def timeout_for(kind: str, params: Mapping[str, str]) -> float:
    own = params.get("timeout") if "timeout" in _module(kind).KEYS else None
    return float(own) if own else float(settings.DEPLOYCHECK_CHECK_TIMEOUT)


def run(kind: str, params: Mapping[str, str], variables: Mapping[str, str], secrets: Iterable[str] = ()) -> Outcome:
    started = time.monotonic()
    secrets = tuple(str(s) for s in (secrets or ()) if s)
    variables = dict(variables or {})
    try:
        outcome = _run(kind, params, variables, secrets)
    except MissingVariable as exc:
        outcome = errored(f"cannot run: {exc}", missing_variable=exc.name)
    except ParamError as exc:
        outcome = errored(f"cannot run: {exc}")
    except net.NetError as exc:
        outcome = Outcome(exc.status, str(exc), dict(exc.evidence))
    except Exception as exc:  # a kind's bug must become a result, never a crashed task
        outcome = errored(f"the check crashed: {type(exc).__name__}: {exc}")
        logger.error("%s check crashed:\n%s", kind,
                     redact("".join(traceback.format_exception(exc)), secrets))
    duration_ms = int((time.monotonic() - started) * 1000)
    return redact_outcome(replace(outcome, duration_ms=duration_ms), secrets)


def _split_host_ports(module, params: Mapping[str, str], filled: dict[str, str]) -> dict[str, str]:
    """A `{{ host }}`-style variable may be `name:port` (CONTRACT.md): the name goes where the
    host goes and the port, where the kind has one, replaces the check's own. Only a value a
    variable filled is split; what an author wrote literally was validated as written."""
    for key, port_key in getattr(module, "HOST_WITH_PORT", {}).items():
        value = filled.get(key, "")
        if not PLACEHOLDER.search(params.get(key, "")) or (value.count(":") != 1 and not value.startswith("[")):
            continue
        host, port = net.split_host_port(value, 0)
        if not port:
            continue
        filled[key] = host
        if port_key:
            filled[port_key] = str(port)
    return filled


def _run(kind: str, params: Mapping[str, str], variables: dict[str, str], secrets: tuple[str, ...]) -> Outcome:
    module = _module(kind)
    filled = fill(params, variables)
    try:
        filled = _split_host_ports(module, params, filled)
    except ValueError as exc:  # "name:port" whose port is not a number
        raise ParamError(f"a host variable is not host[:port] ({exc})") from None
    clean = module.validate(filled)
    for key, value in clean.items():
        leftover = PLACEHOLDER.search(value)
        if leftover:
            raise ParamError(f"{key}: still holds {leftover.group(0)} after filling the run's variables")
    full = with_defaults(kind, clean)
    deadline = net.Deadline(timeout_for(kind, full))
    ctx = CheckContext(variables=variables, secrets=secrets, deadline=deadline)
    with deadline:
        return module.run(full, ctx)


# --- redaction ------------------------------------------------------------------------------


def _forms(secret: str) -> list[str]:
    # A secret in a URL comes back percent-encoded in final URLs and error messages.
    return list(dict.fromkeys([secret, quote(secret, safe=""), quote_plus(secret), quote(secret)]))


def redact(value, secrets: Iterable[str]):
    needles = sorted({form for secret in secrets if secret for form in _forms(secret)}, key=len, reverse=True)
    if not needles:
        return value
    return _redact(value, needles)


def _redact(value, needles):
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {_redact(k, needles): _redact(v, needles) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_redact(item, needles) for item in value]
    if isinstance(value, bytes):
        return _redact(value.decode("utf-8", errors="replace"), needles)
    return value


def redact_outcome(outcome: Outcome, secrets: Iterable[str]) -> Outcome:
    return replace(outcome, message=redact(outcome.message, secrets), evidence=redact(outcome.evidence, secrets))
