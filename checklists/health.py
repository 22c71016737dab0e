"""Liveness and readiness: what a load balancer and an orchestrator ask.

The checks return the reason they failed (driver errors can name hosts, ports and users):
the view shows it only to staff and logs it for the operator; anyone else reads ok / not ok.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import connection


def database_ready() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready", and says why
        return f"database: {exc.__class__.__name__}: {exc}".strip()
    return None


def broker_ready() -> str | None:
    from deploycheck.celery import app

    url = app.conf.broker_url or settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        return None if os.access(folder, os.W_OK) else f"broker: {folder} is not writable"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:
        return f"broker: {exc.__class__.__name__}: {exc}"
    return None


def problems() -> list[str]:
    """Why the service is not ready (empty when it is), with the details only staff may read."""
    return [p for p in (database_ready(), broker_ready()) if p]
