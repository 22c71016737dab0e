"""Runs: start one (or import a filled-in checklist as a past one), tick, assign, note, skip, end.

Each service states its own rule and makes its change inside the kernel's `run_change`, which
locks, writes the event, bumps the revision, keeps the counts and stales approvals.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .. import gate, secrets
from .. import markdown as md
from ..choices import MARKER_TO_STATE, Action, ItemState, RunStatus
from ..errors import RuleError
from ..models import Environment, Note, Run, RunItem, RunSection, RunVariable, TemplateVersion
from .environments import clean_name, clean_variable
from .kernel import run_change, run_open
from .templates import template_import

NOTE_MAX_LENGTH = 20_000


@dataclass
class VariableInput:
    name: str
    value: str
    secret: bool = False


def _copy_version(change, version: TemplateVersion, *, states: dict[int, str] | None = None) -> None:
    """Freeze the version into the run (later edits of the template never reach it), with the
    counts the kernel keeps from then on."""
    run = change.run
    sections = list(version.sections.order_by("position"))
    new_sections: dict[int, RunSection] = {}
    flags: dict[int, tuple[bool, bool]] = {}  # section id -> (optional, after_go_live) inherited
    paths: dict[int | None, list[int]] = {None: []}
    for s in sections:
        parent_optional, parent_agl = flags.get(s.parent_id, (False, False))
        flags[s.pk] = (s.optional or parent_optional, s.after_go_live or parent_agl)
        row = RunSection.objects.create(
            run=run,
            parent=new_sections.get(s.parent_id),
            position=s.position,
            level=s.level,
            title=s.title,
            body=s.body,
            optional=s.optional,
            after_go_live=s.after_go_live,
            roles=s.roles,
            role_counts=s.role_counts,
            four_eyes=s.four_eyes,
            footer=s.footer,
        )
        new_sections[s.pk] = row
        paths[s.pk] = [row.pk, *paths[s.parent_id]]
    section_counts = {row.pk: {"items_total": 0, "items_closed": 0, "check_count": 0} for row in new_sections.values()}
    progress = {"items_total": 0, "items_done": 0, "items_skipped": 0, "items_blocked": 0, "items_in_progress": 0, "gate_open": 0}
    actor_name = run.started_by.get_username()
    new_items: dict[int, RunItem] = {}
    for i in version.items.order_by("position"):
        section_optional, after_go_live = flags.get(i.section_id, (False, False))
        state = (states or {}).get(i.pk, ItemState.TODO)
        required = not (i.optional or section_optional or after_go_live)
        touched = state != ItemState.TODO
        holds = gate.holds_gate(required=required, state=state, verdict="", reason="")
        path = paths.get(i.section_id, [])
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
            required=required,
            after_go_live=after_go_live,
            state=state,
            changed_by=run.started_by if touched else None,
            changed_by_name=actor_name if touched else "",
            changed_at=change.now if touched else None,
            revision=run.revision,
            section_path=path,
            holds_gate=holds,
        )
        progress["items_total"] += 1
        progress["gate_open"] += holds
        if state != ItemState.TODO and f"items_{state}" in progress:
            progress[f"items_{state}"] += 1
        for section_id in path:
            section_counts[section_id]["items_total"] += 1
            section_counts[section_id]["items_closed"] += state in (ItemState.DONE, ItemState.SKIPPED)
        if i.check_kind and path:
            section_counts[path[0]]["check_count"] += 1
    for row in new_sections.values():
        for name, value in section_counts[row.pk].items():
            setattr(row, name, value)
    RunSection.objects.bulk_update(list(new_sections.values()), ["items_total", "items_closed", "check_count"])
    change.update_run(**progress)


def _run_variables(environment: Environment, given: list[VariableInput]) -> tuple[dict[str, tuple[str, bool]], dict]:
    """The run's variables: the environment's as its leads set them (stored as they are, secrets
    still encrypted), plus the names the run adds, plus new values for what a lead marked
    `per_run`. Answers {name: (stored, secret)} and what `run.start` records of it."""
    own = {v.name: v for v in environment.variables.all()}
    rows = {name: (v.stored, v.secret) for name, v in own.items()}
    added, overridden, values = [], [], {}
    for variable in given:
        if not str(variable.name or "").strip():
            continue
        name, value = clean_variable(variable.name, variable.value)
        lead_set = own.get(name)
        if lead_set is not None and not lead_set.per_run:
            raise RuleError(
                f"{name} is set by a lead for {environment.project.name} / {environment.name} and a run cannot change it "
                "(a lead can mark it per run)."
            )
        secret = variable.secret or (lead_set is not None and lead_set.secret)
        (overridden if lead_set is not None else added).append(name)
        rows[name] = (secrets.encrypt(value) if secret else value, secret)
        if not secret:
            values[name] = value
    return rows, {"set": sorted(added), "overridden": sorted(overridden), "values": values}


def _run_create(version, environment, version_label, actor, variables, idempotency_key, *, imported=False, states=None, fingerprint="") -> Run:
    rows, recorded = _run_variables(environment, variables)
    with run_open(
        actor=actor,
        project=environment.project,
        environment=environment,
        version_label=version_label,
        template=version.template,
        template_version=version,
        template_name=version.name,
        template_version_number=version.number,
        description=version.description,
        required_roles=version.required_roles,
        role_counts=version.role_counts,
        four_eyes=version.four_eyes,
        idempotency_key=idempotency_key or None,
        idempotency_fingerprint=fingerprint,
        imported=imported,
    ) as change:
        run = change.run
        RunVariable.objects.bulk_create(
            [RunVariable(run=run, name=name, stored=stored, secret=secret) for name, (stored, secret) in sorted(rows.items())]
        )
        _copy_version(change, version, states=states)
        change.record(
            Action.RUN_START,
            after={
                "template": version.name,
                "template_version": version.number,
                "project": environment.project.name,
                "environment": environment.name,
                "version": run.version_label,
                # Which variables this run chose, so a check's target is never a mystery.
                "variables": recorded,
            },
        )
    return run


def _fingerprint(version, environment, version_label, variables: list[VariableInput]) -> str:
    asked = {
        "template": version.template_id,
        "environment": environment.pk,
        "version": version_label,
        "variables": sorted((v.name.strip(), v.value, bool(v.secret)) for v in variables if v.name.strip()),
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _replay(actor, idempotency_key: str, fingerprint: str) -> Run | None:
    existing = Run.objects.filter(started_by=actor, idempotency_key=idempotency_key).first()
    if existing is not None and existing.idempotency_fingerprint and existing.idempotency_fingerprint != fingerprint:
        raise RuleError(
            f"This Idempotency-Key already opened run {existing.pk} with a different request; send a new key for a new run.", status=409
        )
    return existing


def run_start(
    *,
    version: TemplateVersion,
    environment: Environment,
    version_label: str,
    actor,
    variables: list[VariableInput] | dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Open a run; returns (run, created). The same idempotency key and request answer the same run."""
    version_label = clean_name(version_label, "version label (the release being deployed)")
    if idempotency_key and len(idempotency_key) > 200:
        raise RuleError("Idempotency-Key is longer than 200 characters.")
    if isinstance(variables, dict):
        variables = [VariableInput(name=k, value=str(v)) for k, v in variables.items()]
    variables = variables or []
    fingerprint = _fingerprint(version, environment, version_label, variables) if idempotency_key else ""
    if idempotency_key:
        existing = _replay(actor, idempotency_key, fingerprint)
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            run = _run_create(version, environment, version_label, actor, variables, idempotency_key, fingerprint=fingerprint)
    except IntegrityError:
        # A retry raced us with the same key: the first one won, answer its run.
        existing = _replay(actor, idempotency_key, fingerprint) if idempotency_key else None
        if existing:
            return existing, False
        raise
    return run, True


@transaction.atomic
def run_import(document: md.Document, *, environment: Environment, version_label: str, actor, name: str | None = None, source: str = "") -> Run:
    """A filled-in checklist becomes a past run: its markers become the items' states."""
    version = template_import(document, name=name, actor=actor, source=source)
    markers = {item.pk: MARKER_TO_STATE.get(item.marker or " ", ItemState.TODO) for item in version.items.all()}
    version_label = clean_name(version_label or "imported", "version")
    return _run_create(version, environment, version_label, actor, [], None, imported=True, states=markers)


def _validate_state(state: str, reason: str) -> str:
    if state not in ItemState.values:
        raise RuleError(f"Unknown state {state!r}: use one of {', '.join(ItemState.values)}.")
    reason = (reason or "").strip()
    if ItemState.needs_reason(state) and not reason:
        raise RuleError(f"Say why the item is {ItemState(state).label.lower()}: a reason is required.")
    return reason


def _set_state(change, item: RunItem, state: str, reason: str) -> None:
    change.refuse_if_locked(item)
    if item.state != state or item.reason != (reason if ItemState.needs_reason(state) else ""):
        change.set_state(item, state, reason)


def _assign(change, item: RunItem, assignee) -> None:
    change.refuse_if_locked(item)
    if item.assignee_id == (assignee.pk if assignee else None):
        return
    before = {"assignee": item.assignee.get_username() if item.assignee_id else None}
    change.update_item(item, assignee=assignee)
    change.record(Action.ITEM_ASSIGN, item=item, before=before, after={"assignee": assignee.get_username() if assignee else None})


def _note(change, item: RunItem | None, body: str, actor) -> Note:
    # Notes stay open on a locked run: what happened after launch belongs in the record.
    note = change.add_note(item=item, author=actor, body=body)
    change.record(Action.NOTE_ADD, item=item, after={"note": note.pk, "body": body[:500]})
    return note


def _note_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise RuleError("A note needs some text.")
    if len(body) > NOTE_MAX_LENGTH:
        raise RuleError(f"A note can hold at most {NOTE_MAX_LENGTH} characters.")
    return body


def _assignable(assignee):
    if assignee is not None and not assignee.is_active:
        raise RuleError(f"{assignee.get_username()} is deactivated and cannot be assigned.")
    return assignee


def run_item_set_state(*, item: RunItem, state: str, actor, reason: str = "") -> RunItem:
    reason = _validate_state(state, reason)
    with run_change(item.run_id, actor=actor, item_ids=[item.pk]) as change:
        item = change.item(item.pk)
        _set_state(change, item, state, reason)
    item.run = change.run
    return item


def run_item_assign(*, item: RunItem, assignee, actor) -> RunItem:
    _assignable(assignee)
    with run_change(item.run_id, actor=actor, item_ids=[item.pk]) as change:
        item = change.item(item.pk)
        _assign(change, item, assignee)
    item.run = change.run
    return item


UNCHANGED = object()


def run_item_change(*, run_id: int, item_id: int, actor, state: str | None = None, note: str | None = None, assignee=UNCHANGED) -> RunItem:
    """A pipeline's one call for an item (CONTRACT.md): a state, whose `note` is the reason
    when blocking or skipping and a note otherwise; a note alone; an assignee. All of it in one
    change, or none of it."""
    note = (note or "").strip()
    reason = _validate_state(state, note) if state is not None else ""
    if note and not (state is not None and ItemState.needs_reason(state)):
        note = _note_body(note)
    else:
        note = ""
    if assignee is not UNCHANGED:
        _assignable(assignee)
    with run_change(run_id, actor=actor, item_ids=[item_id]) as change:
        item = change.item(item_id)
        if state is not None:
            _set_state(change, item, state, reason)
        if note:
            _note(change, item, note, actor)
        if assignee is not UNCHANGED:
            _assign(change, item, assignee)
    item.run = change.run
    return item


def note_add(*, run: Run, body: str, actor, item: RunItem | None = None) -> Note:
    body = _note_body(body)
    if item is not None and item.run_id != run.pk:
        raise RuleError("That item belongs to another run.", status=404)
    with run_change(run.pk, actor=actor, item_ids=[item.pk] if item else ()) as change:
        note = _note(change, change.item(item.pk) if item is not None else None, body, actor)
    return note


def section_skip(*, section: RunSection, reason: str, actor) -> int:
    """Skip every open item of a section and its subsections with one reason."""
    reason = (reason or "").strip()
    if not reason:
        raise RuleError("Say why the section is skipped: a reason is required.")
    subtree, children = {section.pk}, {}
    for pk, parent_id in RunSection.objects.filter(run_id=section.run_id).values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    frontier = [section.pk]
    while frontier:
        frontier = [child for pk in frontier for child in children.get(pk, [])]
        subtree.update(frontier)
    ids = list(
        RunItem.objects.filter(run_id=section.run_id, section_id__in=subtree)
        .exclude(state__in=[ItemState.DONE, ItemState.SKIPPED])
        .values_list("pk", flat=True)
    )
    if not ids:
        raise RuleError("Nothing left to skip in this section.")
    with run_change(section.run_id, actor=actor, item_ids=ids) as change:
        items = sorted((i for i in change.items.values() if i.state not in (ItemState.DONE, ItemState.SKIPPED)), key=lambda i: i.position)
        if not items:
            raise RuleError("Nothing left to skip in this section.")
        for item in items:
            change.refuse_if_locked(item)
        for item in items:
            change.set_state(item, ItemState.SKIPPED, reason)
    return len(items)


def run_set_status(*, run: Run, status: str, reason: str, actor) -> Run:
    """A lead aborts an open run, or records that a live one was rolled back."""
    reason = (reason or "").strip()
    if status not in (RunStatus.ABORTED, RunStatus.ROLLED_BACK):
        raise RuleError("`status` is aborted or rolled_back.")
    if not reason:
        raise RuleError("Say why: a reason is required.")
    allowed_from = {RunStatus.ABORTED: (RunStatus.IN_PROGRESS,), RunStatus.ROLLED_BACK: (RunStatus.COMPLETED,)}
    with run_change(run.pk, actor=actor) as change:
        run = change.run
        if run.status not in allowed_from[status]:
            raise RuleError(f"A run that is {run.get_status_display().lower()} cannot become {RunStatus(status).label.lower()}.", status=409)
        before = {"status": run.status}
        change.update_run(status=status, status_reason=reason, ended_at=change.now)
        change.record(Action.RUN_STATUS, before=before, after={"status": status, "reason": reason})
    return run


def user_by_name(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise RuleError(f"No user named {username!r}.")
    return user
