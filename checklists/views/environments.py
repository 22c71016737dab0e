"""Projects and their environments: the variables checks fill in, and scheduled re-verification."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from .. import permissions, services
from ..models import Environment, Project, RuleError


@require_GET
def environment_list(request):
    permissions.require(request.user, "view")
    projects = Project.objects.prefetch_related("environments__variables").order_by("name")
    return render(request, "checklists/environment_list.html", {"projects": projects, "can_manage": permissions.can_manage_templates(request.user)})


@require_GET
def environment_detail(request, pk):
    permissions.require(request.user, "view")
    environment = get_object_or_404(Environment.objects.select_related("project"), pk=pk)
    latest_live = services.environment_latest_live_run(environment)
    return render(
        request,
        "checklists/environment_detail.html",
        {
            "environment": environment,
            "variables": list(environment.variables.all()),
            "schedule": services.schedule_get(environment=environment),
            "can_manage": permissions.can_manage_templates(request.user),
            "recent": environment.runs.select_related("project").order_by("-started_at")[:10],
            "latest_live": latest_live,
            "latest_live_checks": latest_live.items.exclude(check_kind="").count() if latest_live else 0,
        },
    )


@require_POST
def environment_create(request):
    permissions.require(request.user, "templates", "Managing environments needs the lead role.")
    try:
        environment = services.environment_get_or_create(request.POST.get("project", ""), request.POST.get("environment", ""))
    except RuleError as exc:
        messages.error(request, exc.message)
        return redirect("checklists:environment-list")
    return redirect("checklists:environment-detail", pk=environment.pk)


@require_POST
def environment_variables(request, pk):
    permissions.require(request.user, "templates", "Managing variables needs the lead role.")
    environment = get_object_or_404(Environment, pk=pk)
    try:
        if request.POST.get("delete"):
            services.environment_variable_delete(environment=environment, name=request.POST["delete"])
            messages.success(request, f"Removed {request.POST['delete']}.")
        else:
            services.environment_variable_set(
                environment=environment,
                name=request.POST.get("name", ""),
                value=request.POST.get("value"),
                secret=bool(request.POST.get("secret")),
                per_run=bool(request.POST.get("per_run")),
            )
            messages.success(request, f"Saved {request.POST.get('name', '').strip()}.")
    except RuleError as exc:
        messages.error(request, exc.message)
    return redirect("checklists:environment-detail", pk=environment.pk)


@require_POST
def environment_schedule(request, pk):
    permissions.require(request.user, "templates", "Scheduling needs the lead role.")
    environment = get_object_or_404(Environment, pk=pk)
    raw = request.POST.get("every_minutes", "").strip()
    try:
        every = services.schedule_set(environment=environment, every_minutes=int(raw) if raw.isdecimal() else None)
    except RuleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Re-verifying every {every} minutes." if every else "Scheduled re-verification stopped.")
    return redirect("checklists:environment-detail", pk=environment.pk)
