"""gunicorn for `web` (docker-compose.yml): `gunicorn -c gunicorn.conf.py deploycheck.wsgi`.

Every value can be overridden from the environment (GUNICORN_*), so an operator sizes the
web tier without rebuilding the image.

Why these: a request here is a short Postgres transaction plus template rendering, and every
open run page polls every second or two. Threads (`gthread`) let one process hold many
keep-alive poll connections and overlap their database waits without a sync worker per
browser tab; a few processes use the cores. Keep-alive a little longer than the poll interval
lets a page's polls reuse one connection behind a proxy. `timeout` bounds a stuck request
(no view legitimately takes 30 s: exports stream, checks run on workers).
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _int("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9))
threads = _int("GUNICORN_THREADS", 8)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids all
# workers restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
accesslog = "-"
errorlog = "-"
# Behind a proxy the client address comes from X-Forwarded-For; gunicorn trusts it only from
# the addresses in FORWARDED_ALLOW_IPS (its own setting, default 127.0.0.1).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
