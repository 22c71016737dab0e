"""Overview pages: the dashboard, and for managers the history, the reports and two runs side by side."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import charts, permissions, selectors
from .. import history as history_queries
from ..choices import RunStatus
from ..errors import RuleError
from ..models import ChecklistTemplate, Environment, Project
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


def _filters(request) -> history_queries.HistoryFilters:
    return history_queries.HistoryFilters.from_query(request.GET)


def _choices() -> dict:
    """What the filter form offers: three small queries."""
    return {
        "statuses": RunStatus.choices,
        "projects": list(Project.objects.order_by("name").values_list("name", flat=True)),
        "environments": list(Environment.objects.order_by("name").values_list("name", flat=True).distinct()),
        "templates": list(ChecklistTemplate.objects.order_by("name").values_list("name", flat=True).distinct()),
    }


@require_GET
def history(request):
    """Every run, filtered, searched, sorted and paginated; the same view as CSV or JSON."""
    permissions.require(request.user, "reports")
    filters = _filters(request)
    qs = history_queries.history_queryset(filters)
    export = request.GET.get("format", "")
    if export in ("csv", "json"):
        return _history_export(request, filters, qs, export)
    stats = history_queries.history_stats(qs)
    paginator = Paginator(qs, history_queries.PAGE_SIZE)
    # The totals counted the runs already: with a person or text filter every count is a pass
    # over the whole history, so the paginator does not make another.
    paginator.count = stats["total"]
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = history_queries.history_rows(list(page.object_list))
    return render(
        request,
        "checklists/history.html",
        {
            "page": page,
            "filters": filters,
            "stats": stats,
            "query": filters.params().urlencode(),
            "unsorted": filters.params(sort="").urlencode(),
            "sorts": filters.sort_links(),
            "errors": filters.errors,
            **_choices(),
        },
        status=400 if filters.errors else 200,
    )


def _history_export(request, filters, qs, export: str):
    if filters.errors:
        # A file with the wrong rows in it would be worse than none: say what is wrong.
        if export == "json":
            return JsonResponse({"error": " ".join(filters.errors)}, status=400)
        return HttpResponse(" ".join(filters.errors), status=400, content_type="text/plain; charset=utf-8")
    base_url = request.build_absolute_uri("/").rstrip("/")
    rows = history_queries.history_export_rows(qs, base_url)
    if export == "json":
        applied = {key: values if len(values) > 1 else values[0] for key, values in filters.params().lists()}
        body = {"filters": applied, "results": list(rows)}
        body["count"] = len(body["results"])
        response = JsonResponse(body, json_dumps_params={"ensure_ascii": False})
        response["Content-Disposition"] = content_disposition_header(True, "deploycheck-history.json")
        return response
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, "deploycheck-history.csv")
    writer = csv.writer(response)
    columns = [
        "id", "status", "template", "template_version", "project", "environment", "version", "started_by", "started_at",
        "completed_at", "ended_at", "duration_s", "done", "skipped", "blocked", "total", "failed_checks", "signed_by",
        "override_reasons", "status_reason", "html_url",
    ]
    writer.writerow(columns)
    for row in rows:
        row["override_reasons"] = "; ".join(s["override_reason"] for s in row["signed_by"] if s["override_reason"])
        row["signed_by"] = "; ".join(f"{s['role']}: {s['user']} ({s['decision']})" for s in row["signed_by"])
        writer.writerow([csv_safe(row[c]) if row[c] is not None else "" for c in columns])
    return response


@require_GET
def reports(request):
    """The charts a manager reads at a glance, each bar a link to the history rows behind it."""
    permissions.require(request.user, "reports")
    filters = _filters(request)
    qs = history_queries.settled(history_queries.history_queryset(filters, ordered=False), filters)
    path = reverse("checklists:history")

    def week_link(start, end, status):
        return filters.url(path, since=start.isoformat(), until=end.isoformat(), status=[status])

    def month_link(status):
        def link(row):
            start = row["month"].date()
            end = (row["month"] + timedelta(days=32)).replace(day=1).date() - timedelta(days=1)
            return filters.url(path, since=start.isoformat(), until=end.isoformat(), status=status)
        return link

    months = history_queries.monthly_trend(qs)
    failures = history_queries.verification_failures(qs, filters)
    blocked = history_queries.blocked_and_skipped(qs, filters)
    peak_blocked = max((r["n"] for r in blocked), default=0)
    for row in blocked:
        row["bar"] = charts.share(row["n"], peak_blocked)
        row["url"] = filters.url(path, template=row["template"], item=row["text"], item_state=row["state"])
    by_template: dict = {}
    for row in blocked:
        by_template.setdefault(row["template"], []).append(row)
    for row in failures["kinds"]:
        row["bar"] = charts.share(row["rate"], 100)
        row["url"] = filters.url(path, kind=row["kind"])
    peak_worst = max((r["n"] for r in failures["worst"]), default=0)
    for row in failures["worst"]:
        row["bar"] = charts.share(row["n"], peak_worst)
        row["url"] = filters.url(path, template=row["run__template_name"], kind=row["kind"], check=row["item__text"])
    slow = history_queries.slowest_sections(qs)
    peak_slow = max((r["minutes"] for r in slow["rows"]), default=0)
    for row in slow["rows"]:
        row["bar"] = charts.share(row["minutes"], peak_slow)
        row["url"] = filters.url(path, template=row["run__template_name"], status=[RunStatus.COMPLETED, RunStatus.ROLLED_BACK], sort="-duration")
    overrides = history_queries.gate_overrides(qs, filters)
    peak_override = max((r["n"] for r in overrides["reasons"]), default=0)
    for row in overrides["reasons"]:
        row["bar"] = charts.share(row["n"], peak_override)
    return render(
        request,
        "checklists/reports.html",
        {
            "filters": filters,
            "errors": filters.errors,
            "stats": history_queries.history_stats(qs),
            "weeks": charts.stacked_weeks(history_queries.weekly_outcomes(qs), history_queries.OUTCOMES, week_link),
            "outcomes": history_queries.OUTCOMES,
            "rate": charts.simple_bars(months, "rate", month_link([RunStatus.ROLLED_BACK]), suffix="%"),
            "median": charts.simple_bars(months, "median_hours", month_link([RunStatus.COMPLETED, RunStatus.ROLLED_BACK]), suffix=" h"),
            "months": months,
            "blocked": by_template,
            "failures": failures,
            "slow": slow,
            "overrides": overrides,
            "history_url": filters.url(path),
            "override_url": filters.url(path, override="1"),
            **_choices(),
        },
        status=400 if filters.errors else 200,
    )


def _run_or_refuse(request, value: str, name: str):
    if not value.strip().isdecimal():
        raise RuleError(f"`{name}` is a run id (a number), e.g. /runs/compare?a=12&b=15.", status=400)
    return permissions.run_for(request.user, int(value.strip()))


@require_GET
def run_compare(request):
    """Two runs side by side: /runs/compare?a=RUN_ID&b=RUN_ID."""
    permissions.require(request.user, "view")
    a = _run_or_refuse(request, request.GET.get("a", ""), "a")
    b = _run_or_refuse(request, request.GET.get("b", ""), "b")
    return render(request, "checklists/compare.html", history_queries.run_compare(a, b))


@require_GET
def run_compare_previous(request, pk):
    """The run page's "compare with the previous run": same template, project and environment."""
    run = permissions.run_for(request.user, pk)
    previous = history_queries.previous_run(run)
    if previous is None:
        raise RuleError(
            f"No earlier run of {run.template_name} for {run.project.name} / {run.environment.name} to compare with.", status=404
        )
    return redirect(f"{reverse('checklists:run-compare')}?a={previous.pk}&b={run.pk}")
