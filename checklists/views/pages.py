"""Overview pages: the dashboard and the deployment history for managers."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import permissions, selectors
from ..choices import RunStatus
from ..models import Environment, Project, RuleError
from ..serializers import csv_safe


@require_GET
def dashboard(request):
    permissions.require(request.user, "view")
    active = list(selectors.run_history(status=RunStatus.IN_PROGRESS)[:50])
    recent = list(selectors.run_history(status=RunStatus.COMPLETED).order_by("-completed_at")[:10])
    failing = list(selectors.failing_verifications()[:20])
    return render(
        request,
        "checklists/dashboard.html",
        {"active": active, "recent": recent, "failing": failing, "can_start": permissions.can_start_run(request.user)},
    )


@require_GET
def history(request):
    """Every run, filtered; with totals, a chart per week and CSV export."""
    permissions.require(request.user, "reports")
    filters = {
        "project": request.GET.get("project", "").strip(),
        "environment": request.GET.get("environment", "").strip(),
        "status": request.GET.get("status", "").strip(),
        "template": request.GET.get("template", "").strip(),
        "since": request.GET.get("since", "").strip(),
        "until": request.GET.get("until", "").strip(),
    }
    error = None
    try:
        since, until = selectors.moment_param(filters["since"], end=False), selectors.moment_param(filters["until"], end=True)
    except RuleError as exc:
        since = until = None
        error = exc.message
    qs = selectors.run_history(
        project=filters["project"] or None,
        environment=filters["environment"] or None,
        status=filters["status"] or None,
        template=filters["template"] or None,
        since=since,
        until=until,
    )
    if request.GET.get("format") == "csv":
        import csv

        from .api import run_summary_json

        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, "deploycheck-history.csv")
        writer = csv.writer(response)
        columns = ["id", "status", "template", "project", "environment", "version", "started_by", "started_at", "completed_at"]
        writer.writerow(columns)
        for run in qs.iterator(chunk_size=500):
            row = run_summary_json(request, run)
            writer.writerow([csv_safe(row[c] or "") for c in columns])
        return response
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    stats = selectors.history_stats(qs)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "checklists/history.html",
        {
            "page": page,
            "filters": filters,
            "stats": stats,
            "query": query.urlencode(),
            "statuses": RunStatus.choices,
            "projects": Project.objects.order_by("name").values_list("name", flat=True),
            "environments": Environment.objects.order_by("name").values_list("name", flat=True).distinct(),
            "error": error,
        },
        status=400 if error else 200,
    )


