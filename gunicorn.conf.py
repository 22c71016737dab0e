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
this machine, 2026-12-03 04:40 UTC, after the polls stopped redrawing unmoved panels and the
kernel's reads became SQL written once per process; runs of one configuration vary by a
quarter or more here, so two each, alternating):

    configuration                      ticks/s        ratio to the floor
    gthread, 3 workers x 2 threads     120.9 131.0    0.151 0.187
    gthread, 2 workers x 2 threads     112.3 116.1    0.138 0.137
    gthread, 2 workers x 4 threads     104.3 118.1    0.141 0.147
    gthread, 3 workers x 1 thread      127.1 110.5    0.162 0.130

(Before those changes, the same default ran 47-91 ticks/s, 0.067-0.118 of the floor, and 5
workers did worse than 3.)

Every tick of one run waits for that run's row lock, and a process that holds it but is not
on a core holds everyone up: more processes than cores + 1 only add such waits (and the p95).
The work is CPU-bound Python, so more than two threads a process only add GIL contention;
threads (not sync workers) keep the polls' keep-alive connections open.
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
workers = _int("GUNICORN_WORKERS", min(multiprocessing.cpu_count() + 1, 9))
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
