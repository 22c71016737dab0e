import logging

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import health

logger = logging.getLogger(__name__)


@login_not_required
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request):
    """ok / not ok for anyone (a load balancer); why, only for a signed-in staff member.

    Driver errors name hosts, ports and database users: an anonymous caller must not read
    them. The operator finds the reason in the log either way.
    """
    problems = health.problems()
    if not problems:
        return JsonResponse({"status": "ok"})
    logger.warning("not ready: %s", "; ".join(problems))
    user = request.user
    staff = user.is_authenticated and user.is_active and user.is_staff
    return JsonResponse({"status": "unavailable", "error": "; ".join(problems) if staff else "not ready"}, status=503)


def server_error(request):
    """handler500: called inside the uncaught exception, so it can tell a database outage
    (503, worth retrying) from our own failure (500). Reads nothing from the database."""
    import sys

    from django.db import DatabaseError
    from django.http import HttpResponse, JsonResponse
    from django.utils.html import escape

    from ..errors import DATABASE_UNAVAILABLE, SERVER_ERROR

    unavailable = isinstance(sys.exc_info()[1], DatabaseError)
    status, message = (503, DATABASE_UNAVAILABLE) if unavailable else (500, SERVER_ERROR)
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message}, status=status)
    if request.headers.get("HX-Request"):
        return HttpResponse(f'<p class="flash error">{escape(message)}</p>', status=status)
    title = "Database unavailable" if unavailable else "Server error"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · deploycheck</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body><main><h1>{title}</h1><p>{escape(message)}</p></main></body></html>"
    )
    response = HttpResponse(page, status=status)
    if unavailable:
        response["Retry-After"] = "5"
    return response
