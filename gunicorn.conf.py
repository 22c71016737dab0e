"""gunicorn for `web` (docker-compose.yml): `gunicorn -c gunicorn.conf.py deploycheck.wsgi`.

Every value can be overridden from the environment (GUNICORN_*), so an operator sizes the
web tier without rebuilding the image.

Why these: a request here is a short Postgres transaction plus template rendering, and every
open run page polls every second or two. Threads (`gthread`) let one process hold many
keep-alive poll connections and overlap their database waits without a sync worker per
browser tab; a few processes use the cores. Keep-alive a little longer than the poll interval
lets a page's polls reuse one connection behind a proxy. `timeout` bounds a stuck request
(no view legitimately takes 30 s: exports stream, checks run on workers).

Measured with benchmarks/ticks.py (24 clients ticking and polling one 300-item run, 2 cores,
this machine, 2026-12-02; runs of the same configuration vary by about a third, so several):

    configuration                      ticks/s              gunicorn CPU per tick+poll
    sync, 3 workers                    15.9 14.9 12.5 12.4  105 113 132 130 ms
    gthread, 5 workers x 2 threads     18.3 16.9 11.1       94 101 154 ms
    gthread, 2 workers x 4 threads     16.3                 94 ms
    gthread, 5 workers x 8 threads     11.7  9.0  8.7       139 180 186 ms

The work is CPU-bound Python, so more threads than two per process only add GIL contention;
2 x cores + 1 processes with 2 threads each does as well as sync workers and, unlike them,
keeps the polls' connections alive.
"""

import multiprocessing
import os
import sys

# gunicorn reads this file before it puts the app's folder on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploycheck.logs import JSON_FORMATTER  # noqa: E402


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _int("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9))
threads = _int("GUNICORN_THREADS", 2)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids all
# workers restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# deploycheck logs every request itself, as JSON with its request id (deploycheck.logs): no
# second, plain-text access log. gunicorn's own messages go out as JSON lines too.
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": JSON_FORMATTER},
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False}},
}
# Behind a proxy the client address comes from X-Forwarded-For; gunicorn trusts it only from
# the addresses in FORWARDED_ALLOW_IPS (its own setting, default 127.0.0.1).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
