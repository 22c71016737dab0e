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
