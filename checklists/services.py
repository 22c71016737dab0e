"""Every change goes through here: one function per change, one transaction each.

A service applies the rule, writes the audit event and bumps the run's revision, whether a
page, the API, a command or a Celery task calls it, so the rules cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import markdown as md
from .choices import MARKER_TO_STATE, Action, Decision, ItemState, RunStatus
from .models import (
    AuditEvent,
    ChecklistTemplate,
    Environment,
    Note,
    Project,
    RuleError,
    Run,
    RunItem,
    RunSection,
    RunVariable,
    Signoff,
    TemplateItem,
    TemplateSection,
    TemplateVersion,
    unique_slug,
)

VERIFICATION_ACTOR = "verification"


def actor_name(actor) -> str:
    return actor.get_username() if actor is not None else VERIFICATION_ACTOR


# --- Templates ------------------------------------------------------------------------------


def _save_outline(document: md.Document, *, section_model, item_model, owner: dict) -> None:
    """Write a parsed tree as rows, keeping document order in `position`."""
    position = 0

    def save_items(items, section, parent, depth):
        nonlocal position
        for item in items:
            position += 1
            row = item_model.objects.create(
                **owner,
                section=section,
                parent=parent,
                position=position,
                depth=depth,
                text=item.text,
                body=item.body,
                marker=item.marker,
                optional=item.optional,
                check_kind=item.check.kind if item.check else "",
                check_params=dict(item.check.params) if item.check else {},
            )
            save_items(item.children, section, row, depth + 1)

    def save_sections(sections, parent):
        nonlocal position
        for section in sections:
            position += 1
            row = section_model.objects.create(
                **owner,
                parent=parent,
                position=position,
                level=section.level,
                title=section.title,
                body=section.body,
                optional=section.optional,
                after_go_live=section.after_go_live,
                roles=list(section.roles),
                footer=section.footer,
            )
            save_items(section.items, row, None, 0)
            save_sections(section.children, row)

    save_items(document.items, None, None, 0)
    save_sections(document.sections, None)


def _version_create(template: ChecklistTemplate, document: md.Document, *, actor, source: str = "") -> TemplateVersion:
    last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = TemplateVersion.objects.create(
        template=template,
        number=last + 1,
        name=template.name,
        description=document.description,
        required_roles=document.roles,
        item_count=document.item_count,
        section_count=document.section_count,
        check_count=document.check_count,
        source=source,
        created_by=actor,
    )
    _save_outline(document, section_model=TemplateSection, item_model=TemplateItem, owner={"version": version})
    return version


@transaction.atomic
def template_import(document: md.Document, *, name: str | None = None, actor=None, source: str = "") -> TemplateVersion:
    """Import always makes a new template; a clashing slug gets -2, -3 ..."""
    name = (name or document.name or "").strip()
    if not name:
        raise RuleError("The checklist has no `# ` heading: give it a name.")
    template = ChecklistTemplate.objects.create(
        name=name[:200], slug=unique_slug(ChecklistTemplate, name), created_by=actor
    )
    return _version_create(template, document, actor=actor, source=source)


@transaction.atomic
def template_version_create(template: ChecklistTemplate, document: md.Document, *, actor, name: str | None = None) -> TemplateVersion:
    """Saving an edit makes a new version; runs keep the copy they started from."""
    template = ChecklistTemplate.objects.select_for_update().get(pk=template.pk)
    if name and name != template.name:
        template.name = name[:200]
        template.save(update_fields=["name"])
    return _version_create(template, document, actor=actor)


@transaction.atomic
def template_archive(template: ChecklistTemplate, *, actor, archived: bool = True) -> ChecklistTemplate:
    template.archived_at = timezone.now() if archived else None
    template.save(update_fields=["archived_at"])
    return template


def outline_document(*, name: str, description: str, sections, items) -> md.Document:
    """Rebuild the parsed tree from rows (a template version's or a run's), for export."""
    sections = sorted(sections, key=lambda s: s.position)
    items = sorted(items, key=lambda i: i.position)
    item_nodes = {}
    section_nodes = {}
    doc = md.Document(name=name, description=description)
    for s in sections:
        node = md.Section(
            title=s.title,
            level=s.level,
            body=s.body,
            optional=s.optional,
            after_go_live=s.after_go_live,
            roles=list(s.roles or []),
            footer=s.footer,
        )
        section_nodes[s.pk] = node
        (section_nodes[s.parent_id].children if s.parent_id else doc.sections).append(node)
    for i in items:
        check = md.Check(kind=i.check_kind, params=dict(i.check_params)) if i.check_kind else None
        node = md.Item(text=i.text, body=i.body, marker=i.marker or " ", optional=i.optional, check=check)
        item_nodes[i.pk] = node
        if i.parent_id:
            item_nodes[i.parent_id].children.append(node)
        elif i.section_id:
            section_nodes[i.section_id].items.append(node)
        else:
            doc.items.append(node)
    return doc


def version_document(version: TemplateVersion) -> md.Document:
    return outline_document(
        name=version.name,
        description=version.description,
        sections=version.sections.all(),
        items=version.items.all(),
    )


def template_export(version: TemplateVersion) -> str:
    return md.render(version_document(version))


# --- Projects -------------------------------------------------------------------------------


def environment_get_or_create(project_name: str, environment_name: str) -> Environment:
    """Pipelines name projects and environments; they are created on first use."""
    project_name, environment_name = project_name.strip(), environment_name.strip()
    if not project_name or not environment_name:
        raise RuleError("A run needs a project and an environment.")
    project, _ = Project.objects.get_or_create(name=project_name[:200])
    environment, _ = Environment.objects.get_or_create(project=project, name=environment_name[:100])
    return environment


# --- Runs -----------------------------------------------------------------------------------


@dataclass
class VariableInput:
    name: str
    value: str
    secret: bool = False


def _event(run: Run, action: str, actor, *, item: RunItem | None = None, before=None, after=None) -> AuditEvent:
    return AuditEvent.objects.create(
        run=run,
        item=item,
        actor=actor,
        actor_name=actor_name(actor),
        action=action,
        before=before,
        after=after,
        revision=run.revision,
    )


def _bump(run: Run) -> int:
    """The caller holds the run's row lock, so revisions never collide."""
    run.revision += 1
    Run.objects.filter(pk=run.pk).update(revision=run.revision)
    return run.revision


def _lock_run(run_id: int) -> Run:
    return Run.objects.select_for_update().select_related("project", "environment").get(pk=run_id)


def _copy_version(run: Run, version: TemplateVersion, *, states: dict[int, str] | None = None) -> None:
    """Freeze the version into the run: later edits of the template never reach it."""
    sections = list(version.sections.order_by("position"))
    new_sections: dict[int, RunSection] = {}
    flags: dict[int, tuple[bool, bool]] = {}  # section id -> (optional, after_go_live) inherited
    for s in sections:
        parent_optional, parent_agl = flags.get(s.parent_id, (False, False))
        flags[s.pk] = (s.optional or parent_optional, s.after_go_live or parent_agl)
        new_sections[s.pk] = RunSection.objects.create(
            run=run,
            parent=new_sections.get(s.parent_id),
            position=s.position,
            level=s.level,
            title=s.title,
            body=s.body,
            optional=s.optional,
            after_go_live=s.after_go_live,
            roles=s.roles,
            footer=s.footer,
        )
    now = timezone.now()
    new_items: dict[int, RunItem] = {}
    for i in version.items.order_by("position"):
        section_optional, after_go_live = flags.get(i.section_id, (False, False))
        state = (states or {}).get(i.pk, ItemState.TODO)
        new_items[i.pk] = RunItem.objects.create(
            run=run,
            section=new_sections.get(i.section_id),
            parent=new_items.get(i.parent_id),
            position=i.position,
            depth=i.depth,
            text=i.text,
            body=i.body,
            marker=i.marker,
            optional=i.optional,
            check_kind=i.check_kind,
            check_params=i.check_params,
            required=not (i.optional or section_optional or after_go_live),
            after_go_live=after_go_live,
            state=state,
            changed_by=run.started_by if state != ItemState.TODO else None,
            changed_by_name=run.started_by.get_username() if state != ItemState.TODO else "",
            changed_at=now if state != ItemState.TODO else None,
            revision=run.revision,
        )


def run_start(
    *,
    version: TemplateVersion,
    environment: Environment,
    version_label: str,
    actor,
    variables: list[VariableInput] | dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Open a run; returns (run, created). The same idempotency key answers the same run."""
    version_label = (version_label or "").strip()
    if not version_label:
        raise RuleError("A run needs a version label (the release being deployed).")
    if idempotency_key and len(idempotency_key) > 200:
        raise RuleError("Idempotency-Key is longer than 200 characters.")
    if idempotency_key:
        existing = Run.objects.filter(started_by=actor, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    if isinstance(variables, dict):
        variables = [VariableInput(name=k, value=str(v)) for k, v in variables.items()]
    try:
        with transaction.atomic():
            run = _run_create(version, environment, version_label, actor, variables or [], idempotency_key)
    except IntegrityError:
        # A retry raced us with the same key: the first one won, answer its run.
        existing = Run.objects.filter(started_by=actor, idempotency_key=idempotency_key).first()
        if idempotency_key and existing:
            return existing, False
        raise
    return run, True


def _run_create(version, environment, version_label, actor, variables, idempotency_key, *, imported=False, states=None):
    run = Run.objects.create(
        project=environment.project,
        environment=environment,
        version_label=version_label[:200],
        template=version.template,
        template_version=version,
        template_name=version.name,
        template_version_number=version.number,
        description=version.description,
        required_roles=version.required_roles,
        started_by=actor,
        idempotency_key=idempotency_key or None,
        imported=imported,
    )
    values = {v.name: (v.value, v.secret) for v in environment.variables.all()}
    for given in variables:
        name = given.name.strip()
        if not name:
            continue
        secret = given.secret or values.get(name, ("", False))[1]
        values[name] = (given.value, secret)
    for name, (value, secret) in sorted(values.items()):
        var = RunVariable(run=run, name=name, secret=secret)
        var.value = value
        try:
            var.full_clean(exclude=["run", "stored"])
        except ValidationError:
            raise RuleError(f"{name!r} is not a variable name: use letters, digits, - and _.") from None
        var.save()
    _copy_version(run, version, states=states)
    _event(
        run,
        Action.RUN_START,
        actor,
        after={
            "template": version.name,
            "template_version": version.number,
            "project": environment.project.name,
            "environment": environment.name,
            "version": run.version_label,
        },
    )
    return run


@transaction.atomic
def run_import(document: md.Document, *, environment: Environment, version_label: str, actor, name: str | None = None, source: str = "") -> Run:
    """A filled-in checklist becomes a past run: its markers become the items' states."""
    version = template_import(document, name=name, actor=actor, source=source)
    markers = {}
    for item in version.items.all():
        markers[item.pk] = MARKER_TO_STATE.get(item.marker or " ", ItemState.TODO)
    run = _run_create(version, environment, version_label or "imported", actor, [], None, imported=True, states=markers)
    return run


def _stale_approvals(run: Run, actor, *, item: RunItem) -> None:
    """A change after an approval voids it: the approver signed off a different checklist."""
    now = timezone.now()
    for signoff in run.signoffs.filter(decision=Decision.APPROVE, stale_at__isnull=True).select_related("user"):
        signoff.stale_at = now
        signoff.save(update_fields=["stale_at"])
        _event(run, Action.SIGNOFF_STALE, actor, item=item, before={"role": signoff.role, "user": signoff.user.get_username()})


def _apply_state(run: Run, item: RunItem, state: str, reason: str, actor) -> None:
    """Write one state change with its event; the caller holds the run and item locks."""
    before = {"state": item.state, "reason": item.reason}
    _bump(run)
    item.state = state
    item.reason = reason if ItemState.needs_reason(state) else ""
    item.changed_by = actor
    item.changed_by_name = actor_name(actor)
    item.changed_at = timezone.now()
    item.revision = run.revision
    item.save(update_fields=["state", "reason", "changed_by", "changed_by_name", "changed_at", "revision"])
    _event(run, Action.ITEM_STATE, actor, item=item, before=before, after={"state": item.state, "reason": item.reason})


@transaction.atomic
def run_item_set_state(*, item: RunItem, state: str, actor, reason: str = "") -> RunItem:
    if state not in ItemState.values:
        raise RuleError(f"Unknown state {state!r}: use one of {', '.join(ItemState.values)}.")
    reason = (reason or "").strip()
    if ItemState.needs_reason(state) and not reason:
        raise RuleError(f"Say why the item is {ItemState(state).label.lower()}: a reason is required.")
    run = _lock_run(item.run_id)
    item = RunItem.objects.select_for_update().get(pk=item.pk)
    refusal = run.item_change_refusal(item)
    if refusal:
        raise RuleError(refusal, status=409)
    if item.state == state and item.reason == (reason if ItemState.needs_reason(state) else ""):
        return item
    _apply_state(run, item, state, reason, actor)
    if run.is_open:
        _stale_approvals(run, actor, item=item)
    return item


@transaction.atomic
def run_item_assign(*, item: RunItem, assignee, actor) -> RunItem:
    run = _lock_run(item.run_id)
    item = RunItem.objects.select_for_update().get(pk=item.pk)
    refusal = run.item_change_refusal(item)
    if refusal:
        raise RuleError(refusal, status=409)
    if assignee is not None and not assignee.is_active:
        raise RuleError(f"{assignee.get_username()} is deactivated and cannot be assigned.")
    if item.assignee_id == (assignee.pk if assignee else None):
        return item
    before = {"assignee": item.assignee.get_username() if item.assignee else None}
    _bump(run)
    item.assignee = assignee
    item.revision = run.revision
    item.save(update_fields=["assignee", "revision"])
    _event(run, Action.ITEM_ASSIGN, actor, item=item, before=before, after={"assignee": assignee.get_username() if assignee else None})
    return item


NOTE_MAX_LENGTH = 20_000


@transaction.atomic
def note_add(*, run: Run, body: str, actor, item: RunItem | None = None) -> Note:
    """Notes stay open on a locked run: what happened after launch belongs in the record."""
    body = (body or "").strip()
    if not body:
        raise RuleError("A note needs some text.")
    if len(body) > NOTE_MAX_LENGTH:
        raise RuleError(f"A note can hold at most {NOTE_MAX_LENGTH} characters.")
    if item is not None and item.run_id != run.pk:
        raise RuleError("That item belongs to another run.", status=404)
    run = _lock_run(run.pk)
    _bump(run)
    note = Note.objects.create(run=run, item=item, author=actor, body=body)
    if item is not None:
        RunItem.objects.filter(pk=item.pk).update(revision=run.revision)
    _event(run, Action.NOTE_ADD, actor, item=item, after={"note": note.pk, "body": body[:500]})
    return note


def user_by_name(username: str):
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        raise RuleError(f"No user named {username!r}.")
    return user


# --- Sign-off and the go-live gate ----------------------------------------------------------


def _role_canonical(run: Run, role: str | None) -> str:
    role = (role or "").strip()
    if not run.required_roles:
        if role:
            raise RuleError("This run needs no named role: omit `role` (a lead approves).")
        return ""
    for required in run.required_roles:
        if required.lower() == role.lower():
            return required
    if not role:
        raise RuleError(f"Say which role you sign for: {', '.join(run.required_roles)}.")
    raise RuleError(f"{role!r} is not a sign-off role of this run ({', '.join(run.required_roles)}).")


def run_gate_open_items(run: Run) -> list[dict]:
    """Required items that still block approval (not done, skipped without reason, or failing)."""
    from .selectors import item_gate_problem, run_items, run_open_required

    return [
        {
            "id": i.pk,
            "title": i.text,
            "state": i.state,
            "verification": i.latest_verification.status if i.latest_verification else None,
            "problem": item_gate_problem(i),
        }
        for i in run_open_required(run_items(run))
    ]


def run_current_decisions(run: Run) -> dict[str, Signoff]:
    """The latest current (not stale) decision of each role."""
    latest: dict[str, Signoff] = {}
    for signoff in run.signoffs.filter(stale_at__isnull=True).select_related("user").order_by("at", "id"):
        latest[signoff.role] = signoff
    return latest


def _go_live_if_ready(run: Run, actor) -> None:
    decisions = run_current_decisions(run)
    needed = run.required_roles or [""]
    if all(role in decisions and decisions[role].decision == Decision.APPROVE for role in needed):
        before = {"status": run.status}
        run.status = RunStatus.COMPLETED
        run.completed_at = timezone.now()
        run.save(update_fields=["status", "completed_at"])
        _bump(run)
        _event(run, Action.RUN_LIVE, actor, before=before, after={"status": run.status, "at": run.completed_at.isoformat()})


def signoff_record(*, run: Run, actor, decision: str, role: str | None = None, comment: str = "", override_reason: str = "") -> Signoff:
    from . import permissions

    comment, override_reason = (comment or "").strip(), (override_reason or "").strip()
    if decision not in Decision.values:
        raise RuleError("`decision` is approve or reject.")
    with transaction.atomic():
        run = _lock_run(run.pk)
        role = _role_canonical(run, role)
        # Holding the role comes first: a stranger learns nothing about the gate.
        if not permissions.can_sign(actor, role):
            raise RuleError(
                f"You do not hold the {role} sign-off role." if role else "Only a lead can approve this run.",
                status=403,
            )
        if not run.is_open:
            raise RuleError(f"This run is {run.get_status_display().lower()}: sign-off is closed.", status=409)
        if decision == Decision.REJECT and not comment:
            raise RuleError("A rejection needs a comment saying why.")
        if decision == Decision.APPROVE:
            open_items = run_gate_open_items(run)
            if open_items and not override_reason:
                raise RuleError(
                    f"{len(open_items)} required item(s) are not done or have failing verifications.",
                    status=409,
                    detail=open_items,
                )
            if open_items and not permissions.can_lead(actor):
                raise RuleError("Only a lead can override the gate.", status=403)
            if not open_items:
                override_reason = ""
        else:
            override_reason = ""
        _bump(run)
        signoff = Signoff.objects.create(
            run=run, role=role, decision=decision, user=actor, comment=comment, override_reason=override_reason
        )
        action = Action.SIGNOFF_APPROVE if decision == Decision.APPROVE else Action.SIGNOFF_REJECT
        _event(run, action, actor, after={"role": role, "decision": decision, "comment": comment})
        if override_reason:
            _event(run, Action.SIGNOFF_OVERRIDE, actor, after={"role": role, "override_reason": override_reason, "open": open_items})
        if decision == Decision.APPROVE:
            _go_live_if_ready(run, actor)
    return signoff


@transaction.atomic
def run_set_status(*, run: Run, status: str, reason: str, actor) -> Run:
    """A lead aborts an open run, or records that a live one was rolled back."""
    reason = (reason or "").strip()
    if status not in (RunStatus.ABORTED, RunStatus.ROLLED_BACK):
        raise RuleError("`status` is aborted or rolled_back.")
    if not reason:
        raise RuleError("Say why: a reason is required.")
    run = _lock_run(run.pk)
    allowed_from = {RunStatus.ABORTED: (RunStatus.IN_PROGRESS,), RunStatus.ROLLED_BACK: (RunStatus.COMPLETED,)}
    if run.status not in allowed_from[status]:
        raise RuleError(f"A run that is {run.get_status_display().lower()} cannot become {RunStatus(status).label.lower()}.", status=409)
    before = {"status": run.status}
    run.status = status
    run.status_reason = reason
    run.ended_at = timezone.now()
    run.save(update_fields=["status", "status_reason", "ended_at"])
    _bump(run)
    _event(run, Action.RUN_STATUS, actor, before=before, after={"status": status, "reason": reason})
    return run


# --- Verifications --------------------------------------------------------------------------


class QueueUnavailable(RuleError):
    status = 503


def _check_timeout(item) -> float:
    from django.conf import settings

    from .verifications import registry

    try:
        return registry.timeout_for(item.check_kind, item.check_params)
    except (ValueError, registry.ParamError):  # a `{{ timeout }}` placeholder: the default bounds the wait
        return settings.DEPLOYCHECK_CHECK_TIMEOUT


# How long a result may wait in the queue before the sweep calls it lost.
QUEUE_GRACE_SECONDS = 300


def verification_enqueue(*, run: Run, actor, item_ids: list[int] | None = None) -> list:
    """Queue a check for each chosen item that has one; publish after commit.

    With the broker down nothing is recorded and the caller gets QueueUnavailable (503).
    """
    from datetime import timedelta

    from . import health
    from .models import VerificationResult
    from .tasks import verification_run

    problem = health.broker_ready()
    if problem:
        raise QueueUnavailable(f"The verification queue is unavailable ({problem}); nothing was queued. Tick items by hand or try again.")
    if run.is_ended:
        raise RuleError(f"This run is {run.get_status_display().lower()}: nothing to verify.", status=409)
    items = run.items.exclude(check_kind="").order_by("position")
    if item_ids:
        items = items.filter(pk__in=item_ids)
    if run.is_live:
        items = items.filter(after_go_live=True)
    items = list(items)
    if not items:
        raise RuleError("None of the chosen items has a verification to run.")
    now = timezone.now()
    with transaction.atomic():
        results = [
            VerificationResult.objects.create(
                run=run,
                item=item,
                kind=item.check_kind,
                requested_by=actor,
                queued_at=now,
                timeout=timedelta(seconds=_check_timeout(item)),
                deadline_at=now + timedelta(seconds=_check_timeout(item) + QUEUE_GRACE_SECONDS),
            )
            for item in items
        ]
    published = []
    try:
        # A fresh connection each time: a pooled one may still point at a broker that went away.
        with verification_run.app.connection_for_write() as connection:
            for chunk in _chunks([r.pk for r in results]):
                verification_run.apply_async(args=[chunk], retry=False, connection=connection)
                published.extend(chunk)
    except Exception as exc:
        # The broker went away between the ping and the publish: take back what never left.
        VerificationResult.objects.filter(pk__in=[r.pk for r in results]).exclude(pk__in=published).filter(
            status="queued"
        ).delete()
        raise QueueUnavailable(
            f"The verification queue is unavailable ({exc.__class__.__name__}); {len(published)} of {len(results)} checks were queued."
        ) from exc
    return results


def _chunks(ids: list[int]) -> list[list[int]]:
    """A task carries a few checks when many are asked for at once.

    Each Celery task costs the worker several milliseconds of interpreter time of its own;
    with 300 checks that overhead, not the network, decided how long "Verify all" took.
    """
    from math import ceil

    from django.conf import settings

    size = min(16, max(1, ceil(4 * len(ids) / max(1, settings.CELERY_WORKER_CONCURRENCY))))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def verification_claim(result_id: int) -> bool:
    """Only one worker runs a result, even when the broker delivers the task twice."""
    from datetime import timedelta

    from django.db.models import DateTimeField, ExpressionWrapper, F, Value

    from .choices import VerificationStatus
    from .models import VerificationResult

    now = timezone.now()
    deadline = ExpressionWrapper(Value(now + timedelta(seconds=30)) + F("timeout"), output_field=DateTimeField())
    return bool(
        VerificationResult.objects.filter(pk=result_id, status=VerificationStatus.QUEUED).update(
            status=VerificationStatus.RUNNING, started_at=now, deadline_at=deadline
        )
    )


def verification_execute(result_ids: list[int]) -> None:
    """Run claimed checks side by side and record what each found. Called by the Celery task.

    Database work stays in the task's own thread (two queries for the batch); only the
    network waits run in helper threads, bounded across the worker (see checks_running).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .models import VerificationResult
    from .verifications import registry

    rows = list(VerificationResult.objects.filter(pk__in=result_ids).values_list("pk", "run_id", "item__check_kind", "item__check_params"))
    variables: dict[int, list] = {}
    for variable in RunVariable.objects.filter(run_id__in={row[1] for row in rows}).only("run_id", "name", "stored", "secret"):
        variables.setdefault(variable.run_id, []).append(variable)

    def check(row):
        _, run_id, kind, params = row
        own = variables.get(run_id, [])
        with checks_running():
            return registry.run(kind, dict(params), {v.name: v.value for v in own}, secrets=[v.value for v in own if v.secret and v.value])

    if len(rows) == 1:
        outcomes = [check(rows[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(rows), thread_name_prefix="check") as pool:
            outcomes = list(pool.map(check, rows))
    for (pk, _, _, _), outcome in zip(rows, outcomes):
        _result_write(pk, outcome.status, outcome.message, outcome.evidence, outcome.duration_ms)
    for run_id in {row[1] for row in rows}:
        _apply_until_done(run_id, [row[0] for row in rows if row[1] == run_id])


_CHECK_SLOTS = None


def checks_running():
    """At most the worker's concurrency of checks talk to the network at once, in all tasks."""
    import threading

    from django.conf import settings

    global _CHECK_SLOTS
    if _CHECK_SLOTS is None:
        _CHECK_SLOTS = threading.BoundedSemaphore(max(1, settings.CELERY_WORKER_CONCURRENCY))
    return _CHECK_SLOTS


ITEM_STATE_FIELDS = ("state", "reason", "changed_by", "changed_by_name", "changed_at", "revision")


def _result_write(result_id: int, status: str, message: str, evidence: dict | None, duration_ms: int | None) -> bool:
    """Finish a result once: a redelivered task or the sweep finds nothing left to write."""
    from .choices import VerificationStatus
    from .models import VerificationResult

    return bool(
        VerificationResult.objects.filter(pk=result_id, status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING]).update(
            status=status, message=message[:2000], evidence=evidence or {}, duration_ms=duration_ms, finished_at=timezone.now()
        )
    )


def _apply_until_done(run_id: int, result_ids: list[int]) -> None:
    """Either this task applies the batch its results are in, or it sees that another did.

    Nobody queues for the run's row lock: with many results landing at once, a line of
    waiters on one row costs far more than the few statements a batch needs. Taking the
    lock means applying every committed result, these included.
    """
    from .models import VerificationResult

    while verification_apply(run_id) is None:
        time.sleep(0.1)
        if not VerificationResult.objects.filter(pk__in=result_ids, applied_at__isnull=True).exists():
            return


def verification_record(*, result_id: int, status: str, message: str, evidence: dict | None = None, duration_ms: int | None = None) -> bool:
    """Write a finished result once, then see it applied to the run (events, tick, revision).

    Answers False when the result was already finished (a redelivered task, the sweep).
    """
    from .models import VerificationResult

    if not _result_write(result_id, status, message, evidence, duration_ms):
        return False
    _apply_until_done(VerificationResult.objects.values_list("run_id", flat=True).get(pk=result_id), [result_id])
    return True


def verification_apply(run_id: int) -> int | None:
    """Apply every finished, unapplied result of a run in one transaction under the run's lock.

    Answers how many it applied, or None when another transaction holds the run's lock
    (the caller then looks again: see _apply_until_done).
    """
    from .choices import VerificationStatus
    from .models import VerificationResult

    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A result lost to a crash in this instant is found by the sweep and run again;
            # waiting for each WAL flush here would serialise the disk's latency.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        run = Run.objects.select_for_update(skip_locked=True).only("id", "revision", "status").filter(pk=run_id).first()
        if run is None:
            return None
        pending = list(
            VerificationResult.objects.filter(run_id=run_id, finished_at__isnull=False, applied_at__isnull=True)
            .select_related("item")
            .only("id", "kind", "status", "message", "duration_ms", "item_id", *(f"item__{f}" for f in ITEM_STATE_FIELDS), "item__required", "item__after_go_live")
            .select_for_update(of=("self",))
            .order_by("finished_at", "id")
        )
        if not pending:
            return 0
        now = timezone.now()
        items = {r.item_id: r.item for r in pending}
        events, ticked, failed_required = [], {}, None
        for result in pending:
            item = items[result.item_id]
            run.revision += 1
            item.revision = run.revision
            events.append(
                AuditEvent(
                    run_id=run.pk, item_id=item.pk, actor=None, actor_name=VERIFICATION_ACTOR, action=Action.VERIFICATION_RESULT,
                    after={"kind": result.kind, "status": result.status, "message": result.message[:500], "duration_ms": result.duration_ms},
                    revision=run.revision, at=now,
                )
            )
            # A pass ticks only what nobody has decided on: a person's "blocked" or "skipped" stands.
            if result.status == VerificationStatus.PASSED and item.state in (ItemState.TODO, ItemState.IN_PROGRESS) and run.item_change_refusal(item) is None:
                run.revision += 1
                events.append(
                    AuditEvent(
                        run_id=run.pk, item_id=item.pk, actor=None, actor_name=VERIFICATION_ACTOR, action=Action.ITEM_STATE,
                        before={"state": item.state, "reason": item.reason}, after={"state": ItemState.DONE, "reason": ""},
                        revision=run.revision, at=now,
                    )
                )
                item.state, item.reason, item.changed_by, item.changed_by_name, item.changed_at = ItemState.DONE, "", None, VERIFICATION_ACTOR, now
                item.revision = run.revision
                ticked[item.pk] = item
            if result.status == VerificationStatus.FAILED and item.required:
                failed_required = item
        AuditEvent.objects.bulk_create(events)
        # Plain UPDATEs: bulk_update's CASE expressions cost more CPU than they save here.
        for item in items.values():
            fields = {f: getattr(item, f) for f in ITEM_STATE_FIELDS} if item.pk in ticked else {"revision": item.revision}
            RunItem.objects.filter(pk=item.pk).update(**fields)
        VerificationResult.objects.filter(pk__in=[r.pk for r in pending]).update(applied_at=now)
        Run.objects.filter(pk=run.pk).update(revision=run.revision)
        if failed_required is not None and run.is_open:
            _stale_approvals(run, None, item=failed_required)
        return len(pending)


def verification_sweep() -> int:
    """Results stuck past their deadline (worker lost, queue wiped) become errors."""
    # Finished but never applied: the worker died between writing and applying.
    from datetime import timedelta

    from .choices import VerificationStatus
    from .models import VerificationResult

    orphaned = (
        VerificationResult.objects.filter(finished_at__lt=timezone.now() - timedelta(seconds=30), applied_at__isnull=True)
        .values_list("run_id", flat=True)
        .distinct()
    )
    for run_id in list(orphaned):
        verification_apply(run_id)
    stuck = VerificationResult.objects.filter(
        status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING], deadline_at__lt=timezone.now()
    ).values_list("pk", "status")
    count = 0
    for pk, status in stuck:
        where = "waiting in the queue" if status == VerificationStatus.QUEUED else "running"
        if verification_record(
            result_id=pk,
            status=VerificationStatus.ERROR,
            message=f"No result: the check was still {where} past its deadline (a worker stopped or the queue lost it).",
        ):
            count += 1
    return count


@transaction.atomic
def section_skip(*, section: RunSection, reason: str, actor) -> int:
    """Skip every open item of a section and its subsections with one reason."""
    reason = (reason or "").strip()
    if not reason:
        raise RuleError("Say why the section is skipped: a reason is required.")
    run = _lock_run(section.run_id)
    ids, frontier = {section.pk}, [section.pk]
    while frontier:
        frontier = list(RunSection.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        ids.update(frontier)
    items = list(
        RunItem.objects.select_for_update()
        .filter(run=run, section_id__in=ids)
        .exclude(state__in=[ItemState.DONE, ItemState.SKIPPED])
        .order_by("position")
    )
    if not items:
        raise RuleError("Nothing left to skip in this section.")
    refusal = next((run.item_change_refusal(i) for i in items if run.item_change_refusal(i)), None)
    if refusal:
        raise RuleError(refusal, status=409)
    for item in items:
        _apply_state(run, item, ItemState.SKIPPED, reason, actor)
    if run.is_open:
        _stale_approvals(run, actor, item=items[0])
    return len(items)


# --- Scheduled verification and environment variables ---------------------------------------


def _schedule_name(*, run: Run | None = None, environment: Environment | None = None) -> str:
    return f"deploycheck: verify run {run.pk}" if run is not None else f"deploycheck: verify environment {environment.pk}"


def schedule_get(*, run: Run | None = None, environment: Environment | None = None) -> int | None:
    """The re-verification interval in minutes, or None."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=_schedule_name(run=run, environment=environment), enabled=True).select_related("interval").first()
    return task.interval.every if task is not None and task.interval is not None else None


@transaction.atomic
def schedule_set(*, every_minutes: int | None, run: Run | None = None, environment: Environment | None = None) -> int | None:
    """Re-verify a run (its first-24-hours items) or an environment (daily, weekly) on an interval.

    `every_minutes` None or 0 stops it. The beat process picks changes up from the database.
    """
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    name = _schedule_name(run=run, environment=environment)
    if not every_minutes:
        PeriodicTask.objects.filter(name=name).delete()
        return None
    if not 5 <= every_minutes <= 7 * 24 * 60:
        raise RuleError("Re-verify every 5 minutes at the most often, and at least once a week.")
    if run is not None and run.is_ended:
        raise RuleError(f"This run is {run.get_status_display().lower()}: nothing to re-verify.", status=409)
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
    kwargs = {"run_id": run.pk} if run is not None else {"environment_id": environment.pk}
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": "checklists.tasks.verification_scheduled", "interval": interval, "kwargs": json.dumps(kwargs), "enabled": True},
    )
    return every_minutes


def verification_scheduled(*, run_id: int | None = None, environment_id: int | None = None) -> int:
    """What a schedule does when it fires: queue the checks that still matter."""
    if environment_id is not None:
        run = Run.objects.filter(environment_id=environment_id, status=RunStatus.COMPLETED).order_by("-completed_at").first()
    else:
        run = Run.objects.filter(pk=run_id).first()
    if run is None or run.is_ended:
        if run is not None:
            schedule_set(every_minutes=None, run=run)
        return 0
    try:
        return len(verification_enqueue(run=run, actor=None))
    except QueueUnavailable:
        raise
    except RuleError:
        return 0


@transaction.atomic
def environment_variable_set(*, environment: Environment, name: str, value: str | None, secret: bool) -> None:
    """Set a variable; a secret left blank keeps its stored value (it is never sent back to a page)."""
    from django.core.exceptions import ValidationError

    from .models import EnvironmentVariable

    name = (name or "").strip()
    variable = EnvironmentVariable.objects.filter(environment=environment, name=name).first() or EnvironmentVariable(environment=environment, name=name)
    if variable.pk and variable.secret and value in (None, "") and secret:
        return
    variable.secret = secret
    variable.value = value or ""
    try:
        variable.full_clean(exclude=["environment", "stored"])
    except ValidationError:
        raise RuleError(f"{name!r} is not a variable name: use letters, digits, - and _.") from None
    variable.save()


@transaction.atomic
def environment_variable_delete(*, environment: Environment, name: str) -> None:
    environment.variables.filter(name=name).delete()
