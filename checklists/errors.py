"""What a service refuses, each with the HTTP status it maps to. Pages and the API catch these."""

from __future__ import annotations


class RuleError(Exception):
    """A change the rules refuse; `status` is the HTTP answer it maps to."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, detail=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.detail = detail


class QueueUnavailable(RuleError):
    """The verification queue (the broker) cannot take work: nothing was recorded."""

    status = 503


class KernelBypass(RuntimeError):
    """A run, item, sign-off or audit row was about to be written outside services.kernel.

    Not a RuleError: it is our bug, never the user's, and must not be turned into a 4xx.
    """


DATABASE_UNAVAILABLE = "The database is unavailable right now (restarting or unreachable); nothing was changed. Try again in a moment."
SERVER_ERROR = "Something went wrong on our side; nothing was changed. The details are in the server log."
