"""The run page and everything done on it. Thin: permit, call a service, render a partial.

Every action works as a plain form post (redirect back) and as an htmx request (the changed
item's partial, plus out-of-band progress). Refusals come back as a message in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from .. import permissions, reports, selectors, services
from ..models import (
    Project,
    RuleError,
    Run,
    RunItem,
    RunSection,
    TemplateVersion,
)
from ..selectors import run_board
from ..verifications.suggest import VARIABLES

TEMPLATE = "checklists/run_detail.html"


def _run(request, pk: int, need: str = "view") -> Run:
    return permissions.run_for(request.user, pk, need)


def _refusal(request, run: Run, message: str, status: int, *, item: RunItem | None = None):
    """A refusal shows up where the user acted; without htmx it becomes a flash message."""
    if request.htmx:
        response = HttpResponse(f'<p class="refusal" role="alert">{escape(message)}</p>', status=status)
        target = f"#item-{item.pk} .item-error" if item is not None else "#flash"
        return reswap(retarget(response, target), "innerHTML")
    messages.error(request, message)
    url = run.get_absolute_url() + (f"#item-{item.pk}" if item is not None else "")
    return redirect(url)


def _item_response(request, run: Run, item: RunItem):
    """The changed item, and out of band the progress it moved: read from that item and the
    counts the run keeps, never the whole board."""
    if not request.htmx:
        return redirect(run.get_absolute_url() + f"#item-{item.pk}")
    # The run as the kernel left it (counts, status), without reading it again.
    run = item.run
    changes = selectors.run_changes(run, ids=[item.pk])
    context = {**changes, "run": run, "item": changes["changed"][0], "can": _abilities(request.user, run, signing=False)}
    return render(request, "checklists/run_detail.html#item-response", context)


def _refresh() -> HttpResponse:
    """htmx reloads the whole page."""
    response = HttpResponse(status=204)
    response["HX-Refresh"] = "true"
    return response


def _reload(request, run: Run, anchor: str = ""):
    """After a change that touches much of the page: htmx reloads it, a plain post redirects."""
    if request.htmx:
        return _refresh()
    return redirect(run.get_absolute_url() + anchor)


def _abilities(user, run: Run, *, signing: bool = True) -> dict:
    """What this person may do on the run's page; `signing=False` when no sign-off panel is
    drawn (most polls), which spares reading the roles they hold."""
    if not signing:
        return {"work": permissions.can_work(user) and not run.is_ended, "lead": permissions.can_lead(user), "roles": [], "sign": False}
    # The sign-off form offers only the roles this person holds: the others would be refused.
    held = permissions.held_roles(user)
    roles = [role for role in run.required_roles if role.lower() in held]
    return {
        "work": permissions.can_work(user) and not run.is_ended,
        "lead": permissions.can_lead(user),
        "roles": roles,
        "sign": bool(roles) if run.required_roles else permissions.can_lead(user),
    }


@require_GET
def run_detail(request, pk):
    run = _run(request, pk)
    board = run_board(run, user=request.user, show=request.GET.get("show", "all"), query=request.GET.get("q", "").strip())
    context = {
        **board,
        "run": run,
        "can": _abilities(request.user, run),
        "schedule": services.schedule_get(run=run),
    }
    if request.htmx and request.htmx.target == "run-body":
        return render(request, f"{TEMPLATE}#run-body", context)
    return render(request, TEMPLATE, context)


@require_GET
def run_poll(request, pk):
    """Cheap when idle: one indexed query and an empty 204 when nothing changed; else only
    the items changed since the page's revision, with the totals the run keeps."""
    permissions.require(request.user, "view")
    try:
        known = int(request.GET.get("rev", "0"))
    except ValueError:
        known = 0
    current = Run.objects.filter(pk=pk).values_list("revision", "status").first()
    if current is None:
        raise Http404
    if current[0] == known:
        return HttpResponse(status=204)
    if request.GET.get("status") and request.GET["status"] != current[1]:
        # Gone live, aborted, rolled back: what may be done changed everywhere on the page.
        return _refresh()
    run = _run(request, pk)
    if request.GET.get("work", "") in ("0", "1") and request.GET["work"] != ("1" if permissions.can_work(request.user) and not run.is_ended else "0"):
        # Given or lost the member role since the page was drawn: every row's controls change,
        # not only those of the items that moved.
        return _refresh()
    changes = selectors.run_changes(run, revision_after=known, gate_shown=request.GET.get("gate"))
    context = {**changes, "run": run, "can": _abilities(request.user, run, signing=changes["show_signoff"])}
    return render(request, f"{TEMPLATE}#poll-response", context)


def _item(run: Run, item_pk) -> RunItem:
    item = RunItem.objects.filter(pk=item_pk).first()
    if item is None or item.run_id != run.pk:
        raise Http404
    return item


@require_POST
def item_state(request, pk, item_pk):
    run = _run(request, pk)
    item = _item(run, item_pk)
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Ticking items needs the member role.", 403, item=item)
    try:
        item = services.run_item_set_state(item=item, state=request.POST.get("state", ""), actor=request.user, reason=request.POST.get("reason", ""))
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status, item=item)
    return _item_response(request, run, item)


@require_POST
def item_assign(request, pk, item_pk):
    run = _run(request, pk)
    item = _item(run, item_pk)
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Assigning items needs the member role.", 403, item=item)
    username = request.POST.get("assignee", "").strip()
    try:
        if username == "me":
            assignee = request.user
        else:
            assignee = services.user_by_name(username) if username else None
        item = services.run_item_assign(item=item, assignee=assignee, actor=request.user)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status, item=item)
    return _item_response(request, run, item)


@require_POST
def note_create(request, pk):
    run = _run(request, pk)
    item = _item(run, int(request.POST["item"])) if request.POST.get("item", "").isdecimal() else None
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Writing notes needs the member role.", 403, item=item)
    try:
        services.note_add(run=run, body=request.POST.get("body", ""), actor=request.user, item=item)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status, item=item)
    if item is not None:
        return _item_response(request, run, item)
    if request.htmx:
        run.refresh_from_db()
        context = {"run": run, "run_notes": list(run.notes.filter(item=None).select_related("author")), "can": _abilities(request.user, run, signing=False)}
        return render(request, f"{TEMPLATE}#run-notes", context)
    return redirect(run.get_absolute_url() + "#notes")


@require_POST
def section_skip(request, pk, section_pk):
    run = _run(request, pk)
    section = get_object_or_404(RunSection, pk=section_pk, run=run)
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Skipping needs the member role.", 403)
    try:
        count = services.section_skip(section=section, reason=request.POST.get("reason", ""), actor=request.user)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status)
    messages.success(request, f"Skipped {count} item(s) in “{section.title}”.")
    return _reload(request, run, f"#section-{section.pk}")


@require_POST
def run_verify(request, pk):
    run = _run(request, pk)
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Running verifications needs the member role.", 403)
    ids = [int(v) for v in request.POST.getlist("item") if v.isdecimal()]
    section_id = request.POST.get("section", "")
    if section_id.isdecimal():
        ids = list(run.items.filter(section_id=int(section_id)).values_list("pk", flat=True)) or [-1]
    item = run.items.filter(pk=ids[0]).first() if len(ids) == 1 else None
    try:
        results = services.verification_enqueue(run=run, actor=request.user, item_ids=ids or None)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status, item=item)
    if item is not None:
        return _item_response(request, run, item)
    if request.htmx:
        response = HttpResponse(f'<p class="flash info">Queued {len(results)} verification(s); results appear as they finish.</p>')
        return reswap(retarget(response, "#flash"), "innerHTML")
    messages.info(request, f"Queued {len(results)} verification(s).")
    return redirect(run.get_absolute_url())


@require_POST
def signoff_create(request, pk):
    run = _run(request, pk)
    try:
        services.signoff_record(
            run=run,
            actor=request.user,
            decision=request.POST.get("decision", ""),
            role=request.POST.get("role", ""),
            comment=request.POST.get("comment", ""),
            override_reason=request.POST.get("override_reason", ""),
        )
    except RuleError as exc:
        message = exc.message
        if exc.detail:
            titles = "; ".join(d["title"] for d in exc.detail[:8])
            more = f" and {len(exc.detail) - 8} more" if len(exc.detail) > 8 else ""
            message += f" Still open: {titles}{more}."
        return _refusal(request, run, message, exc.status)
    messages.success(request, "Sign-off recorded.")
    return _reload(request, run, "#signoff")


@require_POST
def run_status(request, pk):
    run = _run(request, pk)
    if not permissions.can_lead(request.user):
        return _refusal(request, run, "Aborting a run or recording a rollback needs the lead role.", 403)
    try:
        services.run_set_status(run=run, status=request.POST.get("status", ""), reason=request.POST.get("reason", ""), actor=request.user)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status)
    messages.success(request, "Run status recorded.")
    return _reload(request, run)


@require_GET
def run_report(request, pk):
    """The printable report, or a download in md/json/csv."""
    run = _run(request, pk)
    fmt = request.GET.get("format")
    if fmt in reports.FORMATS:
        content_type, render_report = reports.FORMATS[fmt]
        body = render_report(run, base_url=request.build_absolute_uri("/").rstrip("/")) if fmt == "json" else render_report(run)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, f"run-{run.pk}.{fmt}")
        return response
    board = run_board(run)
    return render(request, "checklists/run_report.html", {**board, "run": run})


@require_http_methods(["GET", "POST"])
def run_start(request):
    """Start a run. The environment's variables belong to its leads: the page shows them
    read-only and asks only for what a lead marked per run and what the template needs that
    the environment lacks."""
    permissions.require(request.user, "start")
    templates = selectors.template_list()
    version_id = request.POST.get("version") or request.GET.get("version")
    template_id = request.POST.get("template") or request.GET.get("template")
    chosen = None
    if version_id and version_id.isdecimal():
        chosen = TemplateVersion.objects.select_related("template").filter(pk=int(version_id)).first()
    elif template_id and template_id.isdecimal():
        chosen = next((t.latest for t in templates if t.pk == int(template_id)), None)
    project_name = (request.POST.get("project") or request.GET.get("project") or "").strip()
    environment_name = (request.POST.get("environment") or request.GET.get("environment") or "").strip()
    environment = services.environment_get(project_name, environment_name) if project_name and environment_name else None
    fixed = list(environment.variables.all()) if environment else []
    per_run = [v for v in fixed if v.per_run]
    needs = services.document_variables(services.version_document(chosen)) if chosen is not None else []
    missing = [name for name in needs if name not in {v.name for v in fixed}]
    error = None
    if request.method == "POST" and request.POST.get("confirm"):
        variables = []
        for name, value in zip(request.POST.getlist("var_name"), request.POST.getlist("var_value")):
            own = next((v for v in per_run if v.name == name), None)
            if own is not None and (value == "" if own.secret else value == own.stored):
                continue  # left as the environment has it: not this run's own value
            if name.strip() and (own is not None or value != ""):
                variables.append(services.VariableInput(name, value, own.secret if own is not None else False))
        try:
            if chosen is None:
                raise RuleError("Choose a template.")
            if chosen.template.is_archived:
                raise RuleError(f"“{chosen.template.name}” is archived: restore it to start runs from it.")
            if chosen.pk != chosen.template.latest_version().pk:
                raise RuleError(f"“{chosen.template.name}” has a newer version: start from v{chosen.template.latest_version().number}.")
            with transaction.atomic():
                env = services.environment_get_or_create(project_name, environment_name)
                run, _ = services.run_start(
                    version=chosen, environment=env, version_label=request.POST.get("version_label", ""), actor=request.user, variables=variables
                )
        except RuleError as exc:
            error = exc.message
        else:
            messages.success(request, "Run started. Good luck with the launch.")
            return redirect(run.get_absolute_url())
    context = {
        "templates": templates,
        "chosen": chosen,
        "projects": list(Project.objects.prefetch_related("environments")),
        "project_name": project_name,
        "environment_name": environment_name,
        "environment": environment,
        "fixed": [v for v in fixed if not v.per_run],
        "per_run": per_run,
        "missing": [{"name": name, "example": VARIABLES.get(name, "")} for name in missing],
        "version_label": request.POST.get("version_label", ""),
        "error": error,
    }
    return render(request, "checklists/run_start.html", context, status=400 if error else 200)


@require_POST
def run_schedule(request, pk):
    """Re-verify the run's checks (its first 24 hours) on an interval."""
    run = _run(request, pk)
    if not permissions.can_work(request.user):
        return _refusal(request, run, "Scheduling verifications needs the member role.", 403)
    raw = request.POST.get("every_minutes", "").strip()
    try:
        every = services.schedule_set(run=run, every_minutes=int(raw) if raw.isdecimal() else None, actor=request.user)
    except RuleError as exc:
        return _refusal(request, run, exc.message, exc.status)
    messages.success(request, f"Re-verifying every {every} minutes." if every else "Scheduled re-verification stopped.")
    return _reload(request, run, "#schedule")


@require_GET
def item_results(request, pk, item_pk):
    """An item's verification history, loaded when someone opens its evidence."""
    run = _run(request, pk)
    item = _item(run, item_pk)
    results = list(item.verifications.select_related("requested_by").order_by("-queued_at", "-id")[:20])
    template = "checklists/item_results.html" + ("#results" if request.htmx else "")
    return render(request, template, {"run": run, "item": item, "results": results})


@require_GET
def item_menu(request, pk, item_pk):
    """An item's actions, fetched when someone first opens its menu; without JavaScript, a page
    of their own whose forms post and come back to the run."""
    run = _run(request, pk)
    item = _item(run, item_pk)
    if not permissions.can_work(request.user):
        raise RuleError("Changing items needs the member role.", status=403)
    context = {"run": run, "item": item, "can": _abilities(request.user, run, signing=False), "people": selectors.people()}
    if request.htmx:
        return render(request, f"{TEMPLATE}#item-menu-body", context)
    return render(request, "checklists/item_menu.html", context)
