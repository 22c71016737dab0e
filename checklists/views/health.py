from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .. import health


@login_not_required
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
def readyz(request):
    problems = [p for p in (health.database_ready(), health.broker_ready()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "error": "; ".join(problems)}, status=503)
    return JsonResponse({"status": "ok"})
