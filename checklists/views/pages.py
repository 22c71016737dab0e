"""Pages: thin views that read through selectors and change through services."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from .. import permissions, selectors, services
from ..choices import RunStatus
from ..models import ChecklistTemplate, Run


def _require(allowed: bool):
    if not allowed:
        raise PermissionDenied


def dashboard(request):
    _require(permissions.can_view(request.user))
    active = list(selectors.run_history(status=RunStatus.IN_PROGRESS)[:50])
    recent = list(selectors.run_history(status=RunStatus.COMPLETED)[:10])
    return render(request, "checklists/dashboard.html", {"active": active, "recent": recent})


def template_list(request):
    _require(permissions.can_view(request.user))
    return render(request, "checklists/template_list.html", {"templates": selectors.template_list()})


def template_detail(request, pk):
    _require(permissions.can_view(request.user))
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    version = template.latest_version()
    if version is None:
        raise Http404
    document = services.version_document(version)
    return render(request, "checklists/template_detail.html", {"template": template, "version": version, "document": document})


def template_export(request, pk):
    _require(permissions.can_view(request.user))
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    version = template.latest_version()
    response = HttpResponse(services.template_export(version), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{template.slug}.md"'
    return response


