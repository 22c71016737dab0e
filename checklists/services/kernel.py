"""The one door every change to a run goes through.

A person on a page, the API, a verification verdict, a sign-off, a status change, a schedule
and an import as a past run all change a run inside `run_change` (or `run_open` for a new
run). The kernel, whatever called it:

  * locks the run's row, so changes to one run apply one at a time and revisions never collide;
  * lets the service apply its own rule to the items it asked for (and only those: a change
    never loads the whole run);
  * writes the audit events and bumps the run's revision once per event, stamping the items
    that moved so the live page can fetch just them;
  * keeps the counts the progress bar and the gate read (on the run and its sections), and
    each item's `holds_gate`, with the rule in gate.py;
  * applies *the* stale-approval rule (gate.stales_approvals) from what changed, never from
    what the caller says.

Rows of runs, items, sections, notes, sign-offs and audit events refuse to be written outside
it: `guard` raises KernelBypass unless a kernel block is open (models.KernelGuardedQuerySet
and the pre_save/pre_delete receivers call it).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import gate
from . import rows
from ..choices import Action, Decision, ItemState, RunStatus, VerificationStatus
from ..errors import KernelBypass, RuleError
from ..models import AuditEvent, Note, Run, RunItem, RunSection, Signoff

VERIFICATION_ACTOR = "verification"
GUARDED_MODELS = (Run, RunItem, RunSection, Note, Signoff, AuditEvent)

_open: ContextVar[bool] = ContextVar("deploycheck_kernel_open", default=False)


def guard(model) -> None:
    if not _open.get():
        raise KernelBypass(
            f"{model.__name__} rows change only through checklists.services.kernel (run_change or run_open): "
            "a second path would skip the lock, the audit event, the revision and the stale rule."
        )


def guard_signal(sender, **kwargs) -> None:
    guard(sender)


@contextmanager
def _kernel_open():
    token = _open.set(True)
    try:
        yield
    finally:
        _open.reset(token)


def actor_name(actor) -> str:
    return actor.get_username() if actor is not None else VERIFICATION_ACTOR


def _stored(item: RunItem, name: str):
    return getattr(item, RunItem._meta.get_field(name).attname)


class RunBusy(Exception):
    """Another transaction holds the run (only with skip_locked: the caller comes back later)."""


_PROGRESS = {
    ItemState.DONE: "items_done",
    ItemState.SKIPPED: "items_skipped",
    ItemState.BLOCKED: "items_blocked",
    ItemState.IN_PROGRESS: "items_in_progress",
}
_CLOSED = (ItemState.DONE, ItemState.SKIPPED)


class RunChange:
    """One locked change to one run. Services call its methods; the kernel writes at the end."""

    def __init__(self, run: Run, actor, items: dict[int, RunItem]):
        self.run = run
        self.actor = actor
        self.items = items
        self.now = timezone.now()
        self._events: list[AuditEvent] = []
        self._dirty: dict[int, set[str]] = defaultdict(set)
        self._before: dict[int, tuple[str, bool, bool]] = {}
        self._run_fields: set[str] = set()

    # --- What services call -----------------------------------------------------------------

    def item(self, pk: int) -> RunItem:
        try:
            return self.items[pk]
        except KeyError:
            raise RuleError("No such item in this run.", status=404) from None

    def refuse_if_locked(self, item: RunItem) -> None:
        refusal = self.run.item_change_refusal(item)
        if refusal:
            raise RuleError(refusal, status=409)

    def update_item(self, item: RunItem, **fields) -> None:
        """Set fields of an item; its counts, gate flag and the stale rule follow at the end."""
        self._remember(item)
        self._set(item, **fields)
        self._settle(item)

    def _set(self, item: RunItem, **fields) -> list[str]:
        """Set what differs, comparing foreign keys by id (never loading the related row)."""
        changed = [name for name, value in fields.items() if _stored(item, name) != getattr(value, "pk", value)]
        for name in changed:
            setattr(item, name, fields[name])
        self._dirty[item.pk].update(changed)
        return changed

    def set_state(self, item: RunItem, state: str, reason: str) -> None:
        """A person's (or a passing check's) state change, with who and when, and its event."""
        before = {"state": item.state, "reason": item.reason}
        self.update_item(
            item,
            state=state,
            reason=reason if ItemState.needs_reason(state) else "",
            changed_by=self.actor,
            changed_by_name=actor_name(self.actor),
            changed_at=self.now,
        )
        self.record(Action.ITEM_STATE, item=item, before=before, after={"state": item.state, "reason": item.reason})

    def verdict(self, item: RunItem, *, queued_at, status: str) -> None:
        """A result queued at `queued_at` now stands at `status`. An item follows its newest
        result only: a check queued earlier that finishes late never overrules a newer one."""
        self._remember(item)
        finished = status in VerificationStatus.finished()
        newer = item.verdict_queued_at is None or queued_at > item.verdict_queued_at
        # The same result again: it may finish, but a late claim never un-finishes it.
        same = queued_at == item.verdict_queued_at and (finished or item.verdict not in VerificationStatus.finished())
        if newer or same:
            self._set(item, verdict=status, verdict_queued_at=queued_at)
        if finished and (item.finished_queued_at is None or queued_at >= item.finished_queued_at):
            self._set(item, failing=gate.is_failing(status), finished_queued_at=queued_at)
        self._settle(item)

    def update_run(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.run, name, value)
        self._run_fields.update(fields)

    def record(self, action: str, *, item: RunItem | None = None, before=None, after=None) -> int:
        """An audit event, at a revision of its own; the item it names is stamped with it."""
        revision = self.touch(item)
        self._events.append(
            AuditEvent(
                run_id=self.run.pk,
                item_id=item.pk if item is not None else None,
                actor=self.actor,
                actor_name=actor_name(self.actor),
                action=action,
                before=before,
                after=after,
                revision=revision,
                at=self.now,
            )
        )
        return revision

    def touch(self, *items: RunItem | None) -> int:
        """Bump the revision once, with no event; live pages refetch the items it names."""
        self.run.revision += 1
        self._run_fields.add("revision")
        for item in items:
            if item is not None:
                self._dirty[item.pk].add("revision")
        return self.run.revision

    def add_signoff(self, **fields) -> Signoff:
        return Signoff.objects.create(run=self.run, **fields)

    def add_note(self, **fields) -> Note:
        return Note.objects.create(run=self.run, **fields)

    def load_items(self, ids) -> None:
        """Items a change finds only once it holds the lock (the results a batch applies)."""
        missing = [pk for pk in ids if pk not in self.items]
        if missing:
            # With the section and assignee an answer names, so answering costs no more reads.
            self.items.update({i.pk: i for i in rows.run_items(self.run.pk, ids=missing, latest=False)})

    # --- The kernel's own work ----------------------------------------------------------------

    def _remember(self, item: RunItem) -> None:
        if item.pk not in self._before:
            self._before[item.pk] = (item.state, item.failing, item.holds_gate)
            self.items.setdefault(item.pk, item)

    def _settle(self, item: RunItem) -> None:
        holds = gate.holds_gate(required=item.required, state=item.state, verdict=item.verdict, reason=item.reason)
        if holds != item.holds_gate:
            item.holds_gate = holds
            self._dirty[item.pk].add("holds_gate")

    def _count(self) -> RunItem | None:
        """Move the run's and sections' counts by what changed; answer an item that stales approvals."""
        sections: dict[int, int] = defaultdict(int)
        stale_cause = None
        for pk, (state, failing, holds) in self._before.items():
            item = self.items[pk]
            if state != item.state:
                for old_new, step in ((state, -1), (item.state, 1)):
                    field = _PROGRESS.get(old_new)
                    if field:
                        self.update_run(**{field: getattr(self.run, field) + step})
                closed = (item.state in _CLOSED) - (state in _CLOSED)
                for section_id in item.section_path if closed else ():
                    sections[section_id] += closed
            if holds != item.holds_gate:
                self.update_run(gate_open=self.run.gate_open + (1 if item.holds_gate else -1))
            if stale_cause is None and gate.stales_approvals(
                required=item.required, state_before=state, state_after=item.state, failing_before=failing, failing_after=item.failing
            ):
                stale_cause = item
        by_step: dict[int, list[int]] = defaultdict(list)
        for section_id, step in sections.items():
            if step:
                by_step[step].append(section_id)
        for step, ids in by_step.items():
            RunSection.objects.filter(pk__in=ids).update(items_closed=F("items_closed") + step)
        return stale_cause

    def _stale(self, cause: RunItem) -> None:
        """A change after an approval voids it: the approver signed off a different checklist.

        One statement stales them and names them: reopening a required item is common during
        a launch, approvals standing at that moment are not, and this runs under the run's lock.
        """
        if self.run.status != RunStatus.IN_PROGRESS:
            return
        meta = Signoff._meta
        # Stored as the ORM stores it (SQLite keeps naive UTC text; a raw aware value would not be).
        now = meta.get_field("stale_at").get_db_prep_value(self.now, connection)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(meta.db_table)} SET stale_at = %s "
                "WHERE run_id = %s AND decision = %s AND stale_at IS NULL "
                f"RETURNING at, {connection.ops.quote_name(meta.pk.column)}, role, user_id",
                [now, self.run.pk, Decision.APPROVE],
            )
            staled = sorted(cursor.fetchall())  # one event each, in the order they were given (Signoff's ordering)
        if not staled:
            return
        User = get_user_model()
        names = dict(User.objects.filter(pk__in={user for *_, user in staled}).values_list("pk", User.USERNAME_FIELD))
        for _, _, role, user in staled:
            self.record(Action.SIGNOFF_STALE, item=cause, before={"role": role, "user": names[user]})

    def _write_items(self) -> None:
        """Every item that moved carries the change's last revision (the poll asks for what
        moved since the revision it has), and items with the same new values share one UPDATE:
        queuing 300 checks writes two statements, not 300."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for pk, fields in self._dirty.items():
            if not fields:
                continue
            item = self.items[pk]
            item.revision = self.run.revision
            fields.add("revision")
            groups[tuple(sorted((RunItem._meta.get_field(name).attname, _stored(item, name)) for name in fields))].append(pk)
        for values, pks in groups.items():
            RunItem.objects.filter(pk__in=pks).update(**dict(values))

    def _flush(self) -> None:
        cause = self._count()
        if cause is not None:
            self._stale(cause)
        self._write_items()
        if self._events:
            AuditEvent.objects.bulk_create(self._events)
        if self._run_fields:
            Run.objects.filter(pk=self.run.pk).update(**{name: getattr(self.run, name) for name in self._run_fields})
        if self._events:
            # What the change owes outside (GitHub's answer) joins the outbox in this transaction.
            from .outbox import run_events_announce

            run_events_announce(self.run, self._events)


@contextmanager
def run_change(run_id: int, *, actor, item_ids=(), skip_locked: bool = False):
    """Lock a run and the items a change needs; write what the change did when the block ends.

    Only the run's row is locked: every write to its items passes here under that lock, so a
    second lock per item would only cost time. With `skip_locked` a busy run raises RunBusy
    instead of waiting (verification batches come back for it).
    """
    with transaction.atomic(), _kernel_open():
        run = rows.run_locked(run_id, skip_locked=skip_locked)
        if run is None:
            if skip_locked and Run.objects.filter(pk=run_id).exists():
                raise RunBusy(run_id)
            raise RuleError("No such run.", status=404)
        change = RunChange(run, actor, {})
        change.load_items(item_ids)
        yield change
        change._flush()


@contextmanager
def run_open(*, actor, **fields):
    """A new run: the service copies its outline inside the block; counts are set by the service."""
    with transaction.atomic(), _kernel_open():
        run = Run.objects.create(started_by=actor, **fields)
        change = RunChange(run, actor, {})
        yield change
        change._flush()


@contextmanager
def history_load():
    """Rows of runs written in bulk as past history (`generate_history`), not changes to a run.

    Live changes never come here: this is for filling a database with finished launches to
    measure history and reports at scale. The writer computes every count the kernel keeps
    from the rows it writes (with gate.py's rules) and writes the audit events itself; the
    guard is opened here so that no other module holds its switch.
    """
    with transaction.atomic(), _kernel_open():
        yield
