"""Template pages: list, detail, import with a preview, the editor, export, archive."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from .. import editor, permissions, selectors, services
from .. import markdown as md
from ..models import ChecklistTemplate, RuleError

MAX_UPLOAD_BYTES = 2 * 1024 * 1024



def _preview(text: str) -> dict:
    """Parse without saving: counts, outline, checks and the first error with its line."""
    try:
        document = md.parse(text)
    except md.ParseError as exc:
        return {"error": str(exc), "error_line": exc.line}
    nodes = editor.outline(document)
    suggestions = editor.suggestions(document)
    editor.prepare_forms(nodes, suggestions)
    items = {node.key: node.obj for node in nodes if node.kind == "item"}
    return {
        "document": document,
        "nodes": nodes,
        "suggestions": suggestions,
        "suggested": [
            {"key": key, "item": items[key].text, "kind": kind, "params": params, "why": _why(items[key], kind, params)}
            for key, kind, params in suggestions
        ],
        "kinds": editor.KINDS,
        "counts": {"items": document.item_count, "sections": document.section_count, "checks": document.check_count},
        "roles": document.roles,
    }


def _why(item, kind: str, params: dict) -> str:
    """The words or the command the suggestion came from, shown beside it."""
    from ..verifications.suggest import suggest_checks

    return next((found.why for found in suggest_checks(item.text, item.body) if found.pair() == (kind, params)), "")


def _template_version(request, pk):
    """The template and the version asked for with ?version=N, else its latest."""
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    number = request.GET.get("version", "")
    version = template.versions.filter(number=int(number)).first() if number.isdecimal() else template.latest_version()
    if version is None:
        raise Http404
    return template, version


@require_GET
def template_list(request):
    permissions.require(request.user, "view")
    archived = request.GET.get("archived") == "1"
    return render(
        request,
        "checklists/template_list.html",
        {"templates": selectors.template_list(include_archived=archived), "archived": archived, "can_manage": permissions.can_manage_templates(request.user)},
    )


@require_GET
def template_detail(request, pk):
    permissions.require(request.user, "view")
    template, version = _template_version(request, pk)
    document = services.version_document(version)
    return render(
        request,
        "checklists/template_detail.html",
        {
            "template": template,
            "version": version,
            "versions": list(template.versions.order_by("-number").select_related("created_by")),
            "nodes": editor.outline(document),
            "document": document,
            "variables": services.document_variables(document),
            "can_manage": permissions.can_manage_templates(request.user),
            "can_start": permissions.can_start_run(request.user),
        },
    )


@require_GET
def template_export(request, pk):
    permissions.require(request.user, "view")
    template, version = _template_version(request, pk)
    response = HttpResponse(services.template_export(version), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{template.slug}-v{version.number}.md")
    return response


@require_http_methods(["GET", "POST"])
def template_import(request):
    """Upload or paste; preview first; save only on confirm, in one transaction."""
    permissions.require(request.user, "templates", "Importing templates needs the lead role.")
    text = md.repair_text(request.POST.get("markdown", ""))
    name = request.POST.get("name", "").strip()
    upload = request.FILES.get("file")
    error = None
    file_name = ""  # the upload's name: the template's name only if the file has no `# ` heading
    if upload is not None:
        if upload.size > MAX_UPLOAD_BYTES:
            error = f"The file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        else:
            try:
                text = md.decode(upload.read())
            except md.ParseError as exc:
                error = f"{upload.name}: {exc}"
            file_name = upload.name.rsplit(".", 1)[0].strip()
    context = {"markdown": text, "name": name, "error": error}
    if request.method == "POST" and error is None:
        preview = _preview(text)
        context.update(preview)
        if not name and file_name and "document" in preview and not preview["document"].name:
            # Shown in the Name field too, so the confirming post (the pasted text, no file) keeps it.
            name = context["name"] = file_name
        if request.POST.get("save") and "error" not in preview:
            # The suggested checks the preview showed ticked (all of them unless unticked).
            ticked = set(request.POST.getlist("attach")) if request.POST.get("suggestions_shown") else set()
            attached = editor.attach_suggestions(preview["document"], ticked)
            try:
                version = services.template_import(preview["document"], name=name or None, actor=request.user, source=text)
            except RuleError as exc:
                context["error"] = exc.message
            else:
                messages.success(
                    request,
                    f"Imported “{version.template.name}”: {version.item_count} items, {version.check_count} checks"
                    + (f" ({attached} of them suggested)." if attached else "."),
                )
                return redirect(version.template)
    if request.htmx and request.POST.get("preview_only"):
        return render(request, "checklists/template_import.html#preview", context)
    status = 400 if context.get("error") and request.method == "POST" else 200
    return render(request, "checklists/template_import.html", context, status=status)


def _base_version(request, template: ChecklistTemplate, latest):
    """The version the editor was opened from (the form carries it), else the latest."""
    number = request.POST.get("base_version", "")
    if number.isdecimal() and latest is not None and int(number) != latest.number:
        return template.versions.filter(number=int(number)).first() or latest
    return latest


def _edit_conflict(request, context, base, latest):
    """Someone saved a newer version while this one was open: save nothing, say so, offer the
    latest; the user's text stays in the form to copy from."""
    context["conflict"] = {"base": base, "latest": latest}
    response = render(request, "checklists/template_edit.html" + ("#editor" if request.htmx else ""), context, status=409)
    if request.htmx:
        response = reswap(retarget(response, "#editor"), "outerHTML")
    return response


@require_http_methods(["GET", "POST"])
def template_edit(request, pk):
    """Edit the Markdown, or use the outline's buttons; saving makes a new version.

    The form carries the version it was opened from: saving when a newer one exists answers
    409 and saves nothing, rather than silently dropping the other person's changes.
    """
    permissions.require(request.user, "templates", "Editing templates needs the lead role.")
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    latest = template.latest_version()
    version = _base_version(request, template, latest) if request.method == "POST" else latest
    text = request.POST["markdown"] if "markdown" in request.POST else services.template_export(version)
    edit_error = None
    op = request.POST.get("op", "")
    if op:
        action, _, key = op.partition(":")
        try:
            document = md.parse(text)
            document = editor.apply(
                document,
                action,
                key,
                text=request.POST.get(f"text-{key}", request.POST.get("text", "")),
                kind=request.POST.get(f"kind-{key}", ""),
                params=request.POST.get(f"params-{key}", ""),
            )
            text = md.render(document)
        except md.ParseError as exc:
            edit_error = f"Fix the Markdown first: {exc}"
        except editor.EditError as exc:
            edit_error = str(exc)
    preview = _preview(text)
    context = {"template": template, "version": version, "markdown": text, "edit_error": edit_error, **preview}
    if request.POST.get("save") and not op:
        new = None
        with transaction.atomic():
            # Locked, so two saves from the same version cannot both pass the check.
            ChecklistTemplate.objects.select_for_update().filter(pk=template.pk).first()
            latest = template.latest_version()
            conflict = version is not None and latest is not None and latest.number != version.number
            if not conflict and "error" in preview:
                context["edit_error"] = "Nothing saved: " + preview["error"]
            elif not conflict:
                new = services.template_version_create(template, preview["document"], actor=request.user, name=request.POST.get("name") or None)
        if conflict:
            return _edit_conflict(request, context, version, latest)
        if new is not None:
            messages.success(request, f"Saved version {new.number}. Runs already started keep the version they began with.")
            if request.htmx:
                return HttpResponseClientRedirect(template.get_absolute_url())
            return redirect(template)
    if request.htmx:
        return render(request, "checklists/template_edit.html#editor", context)
    return render(request, "checklists/template_edit.html", context)


@require_POST
def template_archive(request, pk):
    permissions.require(request.user, "templates", "Archiving templates needs the lead role.")
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    archive = request.POST.get("archive", "1") == "1"
    services.template_archive(template, actor=request.user, archived=archive)
    messages.success(request, f"“{template.name}” {'archived' if archive else 'restored'}. Its past runs are unchanged.")
    return redirect(template)
