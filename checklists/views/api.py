"""The HTTP API for pipelines (CONTRACT.md): thin views that parse, permit, call a service, answer.

Errors are always JSON `{error}` (plus `line` for a bad checklist) with 400/401/403/404/409/503 (and 405 for a wrong method, from middleware.RuleErrorMiddleware).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import DatabaseError, transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from .. import markdown as md
from .. import permissions, selectors, services
from ..errors import RuleError
from ..models import ApiToken, Environment, Run, RunItem
from ..serializers import csv_safe, event_json, item_json, note_json, run_json, run_row_json, signoff_json


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="deploycheck API",
    version="1",
    urls_namespace="api",
    openapi_url="/schema",
    docs_url=None,
    auth=BearerToken(),
)


def error(request, message: str, status: int, **extra):
    return api.create_response(request, {"error": message, **extra}, status=status)


@api.exception_handler(DatabaseError)
def _database_unavailable(request, exc: DatabaseError):
    # Postgres restarting or unreachable: a clean answer a pipeline can retry on, never a 500.
    from ..errors import DATABASE_UNAVAILABLE

    return error(request, DATABASE_UNAVAILABLE, 503)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    parts = []
    for err in exc.errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "payload", "query", "path"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error(request, "; ".join(parts) or "invalid request", 400)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return error(request, "Authentication required: send `Authorization: Bearer TOKEN`.", 401)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return error(request, str(exc), exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error(request, "Not found.", 404)


@api.exception_handler(RuleError)
def _rule_error(request, exc: RuleError):
    extra = {"open": exc.detail} if exc.detail is not None else {}
    return error(request, exc.message, exc.status, **extra)


@api.exception_handler(md.ParseError)
def _parse_error(request, exc: md.ParseError):
    return error(request, str(exc), 400, line=exc.line)


def require(request, need: str, message: str | None = None) -> None:
    permissions.require(request.auth, need, message)


# --- Serialisers ----------------------------------------------------------------------------


def template_json(template, version) -> dict:
    return {
        "id": template.pk,
        "slug": template.slug,
        "name": template.name,
        "version": version.number if version else None,
        "item_count": version.item_count if version else 0,
        "section_count": version.section_count if version else 0,
        "check_count": version.check_count if version else 0,
        "archived": template.is_archived,
    }








def run_answer(request, run: Run) -> dict:
    return run_json(
        run,
        base_url=request.build_absolute_uri("/").rstrip("/"),
        items=selectors.run_items(run),
        signoffs=selectors.run_signoffs(run),
    )


def run_for(request, run_id: int, need: str = "view", message: str | None = None) -> Run:
    return permissions.run_for(request.auth, run_id, need, message)


# --- Templates ------------------------------------------------------------------------------


class TemplateImportIn(Schema):
    markdown: str
    name: str | None = None
    suggest_checks: bool = False


@api.post("/v1/templates/import", response={201: dict})
def template_import(request, payload: TemplateImportIn):
    require(request, "templates", "Importing templates needs the lead role.")
    # Pasted text can carry the same broken encodings as files do.
    text = md.repair_text(payload.markdown)
    document = md.parse(text)
    suggested = services.suggested_checks_attach(document) if payload.suggest_checks else 0
    version = services.template_import(document, name=payload.name, actor=request.auth, source=text)
    return Status(201, {**template_json(version.template, version), "suggested": suggested, "variables": services.document_variables(document)})


@api.get("/v1/templates")
def template_list(request, archived: bool = False):
    require(request, "view")
    return [template_json(t, t.latest) for t in selectors.template_list(include_archived=archived)]


@api.get("/v1/templates/{ref}/export")
def template_export(request, ref: str, version: int | None = None):
    require(request, "view")
    template = selectors.template_get(ref)
    if template is None:
        raise Http404
    chosen = template.versions.filter(number=version).first() if version else template.latest_version()
    if chosen is None:
        raise Http404
    response = HttpResponse(services.template_export(chosen), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(False, f"{template.slug}-v{chosen.number}.md")
    return response


# --- Runs -----------------------------------------------------------------------------------


class RunIn(Schema):
    template: str | int
    project: str
    environment: str
    version: str
    variables: dict[str, Any] = {}


def _variable_inputs(raw: dict[str, Any]) -> list[services.VariableInput]:
    inputs = []
    for name, value in raw.items():
        if isinstance(value, dict):
            inputs.append(services.VariableInput(name, str(value.get("value", "")), bool(value.get("secret"))))
        else:
            inputs.append(services.VariableInput(name, "" if value is None else str(value)))
    return inputs


@api.post("/v1/runs", response={201: dict})
def run_create(request, payload: RunIn):
    require(request, "start", "Starting a run needs the member role.")
    template = selectors.template_get(payload.template)
    if template is None:
        raise RuleError(f"No template {payload.template!r}.", status=404)
    if template.is_archived:
        raise RuleError(f"Template {template.slug!r} is archived.", status=409)
    version = template.latest_version()
    key = request.headers.get("Idempotency-Key") or None
    with transaction.atomic():
        environment = services.environment_get_or_create(payload.project, payload.environment)
        run, created = services.run_start(
            version=version,
            environment=environment,
            version_label=payload.version,
            actor=request.auth,
            variables=_variable_inputs(payload.variables),
            idempotency_key=key,
        )
    # A replay under the same Idempotency-Key answers as the first call did.
    return Status(201, run_answer(request, selectors.run_get(run.pk)))


@api.get("/v1/runs/{run_id}")
def run_detail(request, run_id: int):
    return run_answer(request, run_for(request, run_id))


# --- Environments ---------------------------------------------------------------------------


def variable_json(variable) -> dict:
    return {"name": variable.name, "value": None if variable.secret else variable.stored, "secret": variable.secret, "per_run": variable.per_run}


def environment_json(environment) -> dict:
    return {
        "project": environment.project.name,
        "environment": environment.name,
        "variables": [variable_json(v) for v in environment.variables.all()],
    }


@api.get("/v1/environments")
def environment_list(request):
    require(request, "view")
    environments = Environment.objects.select_related("project").prefetch_related("variables").order_by("project__name", "name")
    return [environment_json(e) for e in environments]


def environment_or_404(project: str, environment: str):
    found = services.environment_get(project, environment)
    if found is None:
        raise RuleError(f"No environment {environment!r} in project {project!r}.", status=404)
    return found


@api.get("/v1/environments/{project}/{environment}")
def environment_detail(request, project: str, environment: str):
    require(request, "view")
    return environment_json(environment_or_404(project, environment))


class VariableIn(Schema):
    value: str
    secret: bool = False
    per_run: bool = False


@api.put("/v1/environments/{project}/{environment}/variables/{name}")
def environment_variable_put(request, project: str, environment: str, name: str, payload: VariableIn):
    require(request, "view")
    require(request, "lead", "Environment variables belong to leads.")
    with transaction.atomic():
        found = services.environment_get_or_create(project, environment)
        variable = services.environment_variable_set(
            environment=found, name=name, value=payload.value, secret=payload.secret, per_run=payload.per_run
        )
    return variable_json(variable)


@api.delete("/v1/environments/{project}/{environment}/variables/{name}")
def environment_variable_delete(request, project: str, environment: str, name: str):
    require(request, "view")
    require(request, "lead", "Environment variables belong to leads.")
    found = environment_or_404(project, environment)
    if not found.variables.filter(name=name).exists():
        raise RuleError(f"No variable {name!r} in {project} / {environment}.", status=404)
    services.environment_variable_delete(environment=found, name=name)
    return {"deleted": name}


class ItemChangeIn(Schema):
    state: str | None = None
    note: str | None = None
    assignee: str | None = None


@api.post("/v1/runs/{run_id}/items/{item_id}")
def item_change(request, run_id: int, item_id: int, payload: ItemChangeIn):
    require(request, "view")
    require(request, "work", "Changing items needs the member role.")
    assignee = services.UNCHANGED
    if "assignee" in payload.model_fields_set:
        assignee = services.user_by_name(payload.assignee) if payload.assignee else None
    item = services.run_item_change(run_id=run_id, item_id=item_id, actor=request.auth, state=payload.state, note=payload.note, assignee=assignee)
    # The answer is the item as the change left it, whatever the size of the run.
    return item_json(selectors.item_answer(item))


class NoteIn(Schema):
    body: str
    item: int | None = None


@api.post("/v1/runs/{run_id}/notes", response={201: dict})
def note_create(request, run_id: int, payload: NoteIn):
    run = run_for(request, run_id, "work", "Writing notes needs the member role.")
    item = get_object_or_404(RunItem, pk=payload.item, run=run) if payload.item else None
    note = services.note_add(run=run, body=payload.body, actor=request.auth, item=item)
    return Status(201, note_json(note))



# --- Sign-off, status, history, the trail ---------------------------------------------------


class SignoffIn(Schema):
    decision: str
    role: str | None = None
    comment: str = ""
    override_reason: str = ""


@api.post("/v1/runs/{run_id}/signoffs", response={201: dict})
def signoff_create(request, run_id: int, payload: SignoffIn):
    run = run_for(request, run_id)
    signoff = services.signoff_record(
        run=run,
        actor=request.auth,
        decision=payload.decision,
        role=payload.role,
        comment=payload.comment,
        override_reason=payload.override_reason,
    )
    run.refresh_from_db()
    return Status(201, {**signoff_json(signoff), "run_status": run.status})


class StatusIn(Schema):
    status: str
    reason: str = ""


@api.post("/v1/runs/{run_id}/status")
def run_status(request, run_id: int, payload: StatusIn):
    run = run_for(request, run_id, "lead", "Aborting a run or recording a rollback needs the lead role.")
    services.run_set_status(run=run, status=payload.status, reason=payload.reason, actor=request.auth)
    return run_answer(request, selectors.run_get(run.pk))


def paginate(request, qs, serialize, page: int, page_size: int) -> dict:
    page_size = max(1, min(page_size or 50, 500))
    page = max(1, page or 1)
    count = qs.count()
    # A page past the end is empty; never an offset the database cannot hold.
    rows = [serialize(r) for r in qs[(page - 1) * page_size : page * page_size]] if (page - 1) * page_size < count else []
    next_url = None
    if page * page_size < count:
        query = request.GET.copy()
        query["page"] = page + 1
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"count": count, "next": next_url, "results": rows}




@api.get("/v1/runs/{run_id}/events")
def run_events(request, run_id: int, page: int = 1, page_size: int = 50):
    run = run_for(request, run_id)
    return paginate(request, run.events.order_by("at", "id"), event_json, page, page_size)




def run_summary_json(request, run) -> dict:
    return {**run_row_json(run, request.build_absolute_uri(run.get_absolute_url())), "progress": {"done": run.done, "total": run.total}}


@api.get("/v1/runs")
def run_list(
    request,
    project: str = "",
    environment: str = "",
    status: str = "",
    template: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
    page_size: int = 50,
    format: str = "json",
):
    require(request, "reports", "Deployment history needs the manager or lead role.")
    qs = selectors.run_history(
        project=project or None,
        environment=environment or None,
        status=status or None,
        template=template or None,
        since=selectors.moment_param(since, end=False),
        until=selectors.moment_param(until, end=True),
    )
    if format == "csv":
        import csv

        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, "deploycheck-runs.csv")
        writer = csv.writer(response)
        columns = ["id", "status", "template", "project", "environment", "version", "started_by", "started_at", "completed_at", "done", "total", "html_url"]
        writer.writerow(columns)
        for run in qs.iterator(chunk_size=500):
            row = run_summary_json(request, run)
            row["done"], row["total"] = row.pop("progress").values()
            writer.writerow([csv_safe(row[c]) if row[c] is not None else "" for c in columns])
        return response
    return paginate(request, qs, lambda r: run_summary_json(request, r), page, page_size)


class VerifyIn(Schema):
    items: list[int] | None = None


@api.post("/v1/runs/{run_id}/verify", response={202: dict}, openapi_extra={"requestBody": {"content": {"application/json": {"schema": VerifyIn.model_json_schema()}}, "required": False}})
def run_verify(request, run_id: int):
    run = run_for(request, run_id, "work", "Running verifications needs the member role.")
    # The body is optional (`{items?}`), which ninja's body parsing does not allow for.
    try:
        items = VerifyIn.model_validate_json(request.body or b"{}").items
    except ValueError:
        raise RuleError("The body is {\"items\": [item ids]}, or empty to verify every check.") from None
    if items is not None and not items:
        raise RuleError("`items` is empty: name the items to verify, or leave it out to verify them all.")
    results = services.verification_enqueue(run=run, actor=request.auth, item_ids=items)
    return Status(202, {"queued": len(results), "results": [{"id": r.pk, "item": r.item_id, "kind": r.kind} for r in results]})


@api.get("/v1/runs/{run_id}/export")
def run_export(request, run_id: int, format: str = "md"):
    from .. import reports

    run = run_for(request, run_id)
    if format not in reports.FORMATS:
        raise RuleError(f"format is one of {', '.join(sorted(reports.FORMATS))}.")
    content_type, render = reports.FORMATS[format]
    body = render(run, base_url=request.build_absolute_uri("/").rstrip("/")) if format == "json" else render(run)
    response = HttpResponse(body, content_type=content_type)
    # Django's helper quotes and encodes what a project or version may hold.
    response["Content-Disposition"] = content_disposition_header(False, f"run-{run.pk}-{run.project.name}-{run.version_label}.{format}")
    return response


# --- The release gate and GitHub's deployment protection rule (README "Gate a release") -------


def _gate_answer(request, gate, *, strict: bool):
    from ..release_gate import STRICT_STATUS

    body = gate.as_json(request.build_absolute_uri("/").rstrip("/"))
    status = STRICT_STATUS[gate.decision] if strict else 200
    if status != 200:
        body = {
            "error": {
                "pending": "The release is not approved yet: its run is in progress.",
                "rejected": "The release was rejected: its run was aborted or rolled back.",
                "none": "No run of this version in this project and environment.",
            }[gate.decision],
            **body,
        }
    return api.create_response(request, body, status=status)


def _gate_names(project, environment, version) -> dict:
    names = {"project": project, "environment": environment, "version": version}
    missing = [name for name, value in names.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise RuleError(f"Say which release: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing.")
    return {name: value.strip() for name, value in names.items()}


@api.get("/v1/gate")
def release_gate(request, project: str = "", environment: str = "", version: str = "", strict: bool = False):
    """The release gate of the newest run of a version; 200 whatever the decision (strict:
    200 approved, 409 pending, 403 rejected, 404 none)."""
    from ..release_gate import release_gate_get

    require(request, "view")
    return _gate_answer(request, release_gate_get(**_gate_names(project, environment, version)), strict=strict)


GATE_POST_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "phase": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {name: {"type": "string"} for name in ("project", "environment", "version", "token")},
        },
    },
}


@api.post(
    "/v1/gate",
    auth=None,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": GATE_POST_BODY}}, "required": False}},
)
def release_gate_webhook(request):
    """For webhook gates that cannot send headers (Flagger's confirm-promotion): project,
    environment, version and token from the query or the body's `metadata`; answers as the
    strict gate, since such callers read only the status."""
    from ..release_gate import release_gate_get

    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise RuleError("The body is not JSON: send {\"metadata\": {\"project\", \"environment\", \"version\", \"token\"}}.") from None
    metadata = body.get("metadata") if isinstance(body, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}

    def given(name):
        value = request.GET.get(name)
        return value if value not in (None, "") else metadata.get(name)

    token = given("token")
    if not token:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    user = ApiToken.authenticate(token) if isinstance(token, str) and token else None
    if user is None:
        return error(request, "Authentication required: give `token` in the query or in metadata (or a bearer token).", 401)
    request.user = request.auth = user
    require(request, "view")
    names = _gate_names(given("project"), given("environment"), given("version"))
    return _gate_answer(request, release_gate_get(**names), strict=True)


@api.post("/v1/integrations/github", auth=None, response={200: dict, 202: dict})
def github_webhook(request):
    """GitHub's deployment_protection_rule webhook: signed with the App's webhook secret, no token."""
    from ..integrations import github

    if not github.signature_valid(request.body, request.headers.get("X-Hub-Signature-256")):
        return error(request, "The X-Hub-Signature-256 signature is missing or wrong (or DEPLOYCHECK_GITHUB_WEBHOOK_SECRET is unset).", 401)
    event = request.headers.get("X-GitHub-Event", "")
    try:
        payload = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        raise RuleError("The body is not JSON.") from None
    if event != "deployment_protection_rule" or not isinstance(payload, dict) or payload.get("action") != "requested":
        # `ping` when the App is installed, and whatever else it is subscribed to.
        return Status(200, {"ignored": event or "unnamed event"})
    found = github.deployment_request_receive(
        payload, delivery=request.headers.get("X-GitHub-Delivery", ""), site_url=request.build_absolute_uri("/").rstrip("/")
    )
    return Status(202, {"request": found.pk, "run": found.run_id, "answer": found.answer or None})


# --- Notifications (CONTRACT.md "Outgoing notifications") ----------------------------------

WEBHOOK_FORMATS = ("json", "slack")


def webhook_json(receiver, *, secret: str | None = None, last=False) -> dict:
    from ..services.notifications import delivery_json

    answer = {"id": receiver.pk, "url": receiver.target, "format": receiver.kind, "events": receiver.events}
    if secret:
        answer["secret"] = secret
    if last is not False:
        answer["last_delivery"] = delivery_json(last)
    return answer


def _project_or_404(name: str):
    from ..models import Project

    project = Project.objects.filter(name=name).first()
    if project is None:
        raise RuleError(f"No project {name!r}.", status=404)
    return project


class WebhookIn(Schema):
    url: str
    format: str
    events: list[str] | None = None
    secret: str | None = None


@api.post("/v1/projects/{project}/webhooks", response={201: dict})
def webhook_create(request, project: str, payload: WebhookIn):
    from ..services import notifications

    require(request, "view")
    require(request, "lead", "Webhooks belong to leads.")
    if payload.format not in WEBHOOK_FORMATS:
        raise RuleError("`format` is json or slack.")
    created = notifications.receiver_create(
        project_name=project, kind=payload.format, target=payload.url, events=payload.events, secret=payload.secret, actor=request.auth
    )
    return Status(201, webhook_json(created.receiver, secret=created.generated_secret))


@api.get("/v1/projects/{project}/webhooks")
def webhook_list(request, project: str):
    from ..services import notifications

    require(request, "view")
    require(request, "lead", "Webhooks belong to leads.")
    receivers = notifications.receiver_list(_project_or_404(project))
    return [webhook_json(r, last=r.last) for r in receivers if r.kind in WEBHOOK_FORMATS]


@api.delete("/v1/projects/{project}/webhooks/{webhook_id}")
def webhook_delete(request, project: str, webhook_id: int):
    from ..services import notifications

    require(request, "view")
    require(request, "lead", "Webhooks belong to leads.")
    project_found = _project_or_404(project)
    found = project_found.receivers.filter(pk=webhook_id, kind__in=WEBHOOK_FORMATS).first() if 0 < webhook_id < 2**63 else None
    if found is None:
        raise RuleError(f"No webhook {webhook_id} in project {project!r}.", status=404)
    notifications.receiver_delete(receiver=found)
    return {"deleted": webhook_id}
