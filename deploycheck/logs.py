"""Logs an operator can search: one JSON object per line, each carrying the request id, the
user and the run it concerns where there is one, from the web app and from the worker.

`RequestLogMiddleware` gives each request an id (the proxy's `X-Request-ID` when it sends a
sane one, else a new one), answers it in `X-Request-ID`, and logs one `request` line when the
response leaves. `ContextFilter` copies the current request's (or task's) fields onto every
record logged meanwhile, whoever logs it. Celery's task signals do the same for tasks.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from django.conf import settings

# The one JSON line format, shared by Django's LOGGING and gunicorn.conf.py.
JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("deploycheck_log_context", default={})
logger = logging.getLogger("deploycheck.request")


def bind(**fields) -> contextvars.Token:
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v not in (None, "")}})


def current() -> dict:
    return _context.get()


class ContextFilter(logging.Filter):
    """Adds request_id, user, run and task to every record (text logs show request_id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return True


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or behind a proxy (DEPLOYCHECK_BEHIND_PROXY) the last
    X-Forwarded-For entry, which the proxy appended: entries before it are whatever the client
    chose to send. Login throttling counts failures per this address."""
    if getattr(settings, "DEPLOYCHECK_BEHIND_PROXY", False):
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        # A fresh context per request, left in place when the response leaves: Django logs
        # a 4xx or 5xx (django.request) after the middleware has returned, and that line
        # should carry the same id. The thread's next request replaces it.
        _context.set({"request_id": request_id})
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        user = getattr(request, "user", None)
        bind(user=user.get_username() if user is not None and user.is_authenticated else None, run=_run_of(request))
        logger.info(
            "%s %s %s", request.method, request.path, response.status_code,
            extra={"method": request.method, "path": request.path, "status": response.status_code,
                   "duration_ms": int((time.monotonic() - started) * 1000), "client": client_ip(request)},
        )
        return response


def _run_of(request) -> int | None:
    """The run a page or API call is about, from its URL (never trusted beyond being a number)."""
    match = getattr(request, "resolver_match", None)
    kwargs = match.kwargs if match is not None else {}
    run = kwargs.get("run_id") or (kwargs.get("pk") if "/runs/" in request.path else None)
    if isinstance(run, int):
        return run
    return int(run) if isinstance(run, str) and run.isascii() and run.isdecimal() and len(run) < 19 else None


def task_started(task_id=None, task=None, **_):
    task.request.deploycheck_log_token = bind(task=task.name, task_id=task_id)


def task_finished(task_id=None, task=None, **_):
    token = getattr(task.request, "deploycheck_log_token", None)
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # set in another context (eager tasks in tests): just clear
            _context.set({})
