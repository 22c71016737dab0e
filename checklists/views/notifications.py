"""A project's Notifications page: who hears about its runs, how their last delivery went,
and (for leads) adding, testing and removing receivers."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from .. import permissions
from ..errors import RuleError
from ..models import NotificationReceiver, Project
from ..services import notifications


@require_GET
def notification_list(request, pk):
    permissions.require(request.user, "view")
    project = get_object_or_404(Project, pk=pk)
    return render(
        request,
        "checklists/notification_list.html",
        {
            "project": project,
            "receivers": notifications.receiver_list(project),
            "events": NotificationReceiver.EVENTS,
            "kinds": NotificationReceiver.KINDS,
            "can_manage": permissions.can_lead(request.user),
            "base_url_missing": not notifications.base_url_set(),
        },
    )


@require_POST
def notification_create(request, pk):
    permissions.require(request.user, "lead", "Managing notifications needs the lead role.")
    project = get_object_or_404(Project, pk=pk)
    try:
        created = notifications.receiver_create(
            project_name=project.name,
            kind=request.POST.get("kind", ""),
            target=request.POST.get("target", ""),
            events=request.POST.getlist("events"),
            secret=request.POST.get("secret") or None,
            actor=request.user,
        )
    except RuleError as exc:
        messages.error(request, exc.message)
    else:
        receiver = created.receiver
        text = f"Added {receiver.get_kind_display()} {receiver.target}."
        if created.generated_secret:
            text += f" Its signing secret, shown this once: {created.generated_secret}"
        messages.success(request, text)
    return redirect("checklists:notification-list", pk=project.pk)


def _receiver(pk, receiver_pk) -> NotificationReceiver:
    return get_object_or_404(NotificationReceiver.objects.select_related("project"), pk=receiver_pk, project_id=pk)


@require_POST
def notification_test(request, pk, receiver_pk):
    permissions.require(request.user, "lead", "Managing notifications needs the lead role.")
    receiver = _receiver(pk, receiver_pk)
    notifications.receiver_test(receiver=receiver)
    messages.success(request, f"A test is on its way to {receiver.target}; its status shows below.")
    return redirect("checklists:notification-list", pk=pk)


@require_POST
def notification_delete(request, pk, receiver_pk):
    permissions.require(request.user, "lead", "Managing notifications needs the lead role.")
    receiver = _receiver(pk, receiver_pk)
    notifications.receiver_delete(receiver=receiver)
    messages.success(request, f"Removed {receiver.target}.")
    return redirect("checklists:notification-list", pk=pk)
