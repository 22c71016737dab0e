"""Every read a page or the API needs, each with a fixed number of queries however long the run."""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, Q, Subquery

from . import gate
from .choices import ItemState, VerificationStatus
from .models import ChecklistTemplate, Run, RunItem, RunSection, TemplateVersion, VerificationResult


def template_get(ref: str | int) -> ChecklistTemplate | None:
    """An all-digit reference is an id, anything else a slug."""
    ref = str(ref).strip()
    qs = ChecklistTemplate.objects.all()
    return qs.filter(pk=int(ref)).first() if ref.isdecimal() else qs.filter(slug=ref).first()


def template_list(*, include_archived: bool = False):
    latest = TemplateVersion.objects.filter(template=OuterRef("pk")).order_by("-number")
    qs = ChecklistTemplate.objects.annotate(
        latest_version_id=Subquery(latest.values("pk")[:1]),
    )
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    templates = list(qs)
    versions = TemplateVersion.objects.in_bulk([t.latest_version_id for t in templates if t.latest_version_id])
    for t in templates:
        t.latest = versions.get(t.latest_version_id)
    return templates


def run_items(run: Run, *, ids=None, revision_after: int | None = None) -> list[RunItem]:
    """The run's items in checklist order (or only the chosen ones, or those changed after a
    revision), each with its latest verification: two queries however many items (the first
    written once per process: every poll of every open page makes it)."""
    from .services import rows

    items = rows.run_items(run.pk, ids=ids, revision_after=revision_after)
    ids = [i.latest_verification_id for i in items if i.latest_verification_id]
    results = VerificationResult.objects.in_bulk(ids) if ids else {}
    to_run = RunItem._meta.get_field("run")
    for i in items:
        i.latest_verification = results.get(i.latest_verification_id)
        to_run.set_cached_value(i, run)
    return items


def item_answer(item: RunItem) -> RunItem:
    """The item a change just wrote, ready for its answer: the kernel already read its row,
    section and assignee; only a checked item needs its latest result (one query)."""
    item.latest_verification = item.verifications.order_by("-queued_at", "-id").first() if item.check_kind else None
    return item


def run_get(run_id: int) -> Run | None:
    return (
        Run.objects.select_related("project", "environment", "template", "started_by")
        .filter(pk=run_id)
        .first()
    )


def run_signoffs(run: Run):
    return list(run.signoffs.select_related("user").order_by("at", "id"))


def run_history(*, project=None, environment=None, status=None, template=None, since=None, until=None):
    # The kernel keeps each run's counts: history never joins the items.
    qs = Run.objects.select_related("project", "environment", "template", "started_by").annotate(
        total=F("items_total"), done=F("items_done")
    )
    if project:
        qs = qs.filter(project__name=project)
    if environment:
        qs = qs.filter(environment__name=environment)
    if status:
        qs = qs.filter(status=status)
    if template:
        # An id, a slug or a name; a run whose template was deleted still matches by name.
        match = Q(template__slug=template) | Q(template_name=template)
        if str(template).isdecimal():
            match |= Q(template_id=int(template))
        qs = qs.filter(match)
    if since:
        qs = qs.filter(started_at__gte=since)
    if until:
        qs = qs.filter(started_at__lte=until)
    return qs.order_by("-started_at", "-id")


# --- The run page ---------------------------------------------------------------------------

FILTERS = {
    "all": "All",
    "open": "Open",
    "blocked": "Blocked",
    "mine": "Mine",
    "failing": "Failing checks",
}


def item_matches(item, show: str, query: str, user) -> bool:
    if show == "open" and item.state in (ItemState.DONE, ItemState.SKIPPED):
        return False
    if show == "blocked" and item.state != ItemState.BLOCKED:
        return False
    if show == "mine" and item.assignee_id != getattr(user, "pk", None):
        return False
    if show == "failing" and not item.failing:
        return False
    if query and query.lower() not in item.text.lower():
        return False
    return True


def _attach_notes(run: Run, items: list[RunItem], *, run_notes: bool, whole_run: bool = False) -> list:
    """Each item's notes as `note_list`; answers the run's own notes when asked (one query)."""
    notes = run.notes.select_related("author").order_by("created_at", "id")
    if not whole_run:
        wanted = Q(item_id__in=[i.pk for i in items])
        if run_notes:
            wanted |= Q(item__isnull=True)
        notes = notes.filter(wanted)
    by_item: dict[int | None, list] = {}
    for note in notes:
        by_item.setdefault(note.item_id, []).append(note)
    for item in items:
        item.note_list = by_item.get(item.pk, [])
    return by_item.get(None, [])


def people():
    """Who an item can be assigned to."""
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(is_active=True).order_by("username").only("id", "username"))


def run_gate_open_items(run: Run, *, limit: int | None = None) -> list[dict]:
    """Required items that hold go-live back, and why: read by the flag the kernel keeps."""
    items = run.items.filter(holds_gate=True).order_by("position").only("id", "text", "state", "verdict", "required", "reason")
    if limit is not None:
        items = items[:limit]
    return [
        {
            "id": i.pk,
            "title": i.text,
            "state": i.state,
            "verification": i.verdict or None,
            "problem": gate.item_gate_problem(required=i.required, state=i.state, verdict=i.verdict, reason=i.reason),
        }
        for i in items
    ]


def run_signoff_standing(run: Run) -> gate.SignoffStanding:
    """Where sign-off stands ("Ops 1 of 2"), from the current decisions (gate.py decides)."""
    decisions = list(run.signoffs.filter(stale_at__isnull=True).order_by("at", "id").values_list("role", "user_id", "decision"))
    return gate.signoff_standing(
        required_roles=run.required_roles,
        role_counts=run.role_counts,
        four_eyes=run.four_eyes and not run.imported,
        starter_id=run.started_by_id,
        decisions=decisions,
    )


# The activity feed shows this many events.
FEED_LENGTH = 30


def _side_panels(run: Run) -> dict:
    """What the sign-off panel and the activity list show: bounded by sign-offs and 30 events."""
    return {
        "progress": run.progress,
        "signoffs": run_signoffs(run),
        "standing": run_signoff_standing(run),
        # Up to the revision the page will poll from: a change committing meanwhile comes
        # with the next poll, not twice.
        "events": list(run.events.filter(revision__lte=run.revision).select_related("item").order_by("-at", "-id")[:FEED_LENGTH]),
    }


def run_board(run: Run, *, user=None, show: str = "all", query: str = "") -> dict:
    """Everything the run page shows, in a fixed number of queries however many items."""
    items = run_items(run)
    run_notes = _attach_notes(run, items, run_notes=True, whole_run=True)
    sections = list(run.sections.order_by("position"))
    by_section: dict[int | None, list] = {}
    for item in items:
        if item_matches(item, show, query, user):
            by_section.setdefault(item.section_id, []).append(item)
    depth: dict[int | None, int] = {}
    for section in sections:
        section.visible_items = by_section.get(section.pk, [])
        section.depth = depth[section.pk] = depth.get(section.parent_id, -1) + 1
    return {
        **_side_panels(run),
        "items": items,
        "root_items": by_section.get(None, []),
        "sections": [s for s in sections if not s.roles],
        "run_notes": run_notes,
        "people": people(),
        "show": show if show in FILTERS else "all",
        "query": query,
        "filters": FILTERS,
    }


SIGNOFF_PANEL_ACTIONS = ("signoff.", "run.")
# A page further behind than this many revisions gets every panel without looking at why:
# the look is one indexed pass over the events since its revision, kept short.
PANEL_SCAN_REVISIONS = 500


def _panels_moved(run: Run, revision_after: int) -> tuple[bool, bool]:
    """Did a sign-off or status event, or a run note, happen after this revision? One query
    over the events since (a busy launch writes dozens a second; few of them touch a panel)."""
    if run.revision - revision_after > PANEL_SCAN_REVISIONS:
        return True, True
    signoff = Q()
    for prefix in SIGNOFF_PANEL_ACTIONS:
        signoff |= Q(action__startswith=prefix)
    moved = run.events.filter(revision__gt=revision_after, revision__lte=run.revision).aggregate(
        signoff=Count("pk", filter=signoff), notes=Count("pk", filter=Q(action="note.add", item__isnull=True))
    )
    return bool(moved["signoff"]), bool(moved["notes"])


def run_changes(run: Run, *, ids=None, revision_after: int | None = None, gate_shown: str | None = None) -> dict:
    """What a tick's answer and the poll send: the changed items, the sections they count in,
    the totals the run keeps, and (for the poll) what happened since the page's revision, with
    the sign-off panel and run notes only when an event says they moved. The same queries on a
    30-item and a 300-item run."""
    changed = run_items(run, ids=ids, revision_after=revision_after)
    _attach_notes(run, changed, run_notes=False)
    section_ids = {pk for item in changed for pk in item.section_path}
    answer = {
        "progress": run.progress,
        "changed": changed,
        "sections": list(RunSection.objects.filter(pk__in=section_ids).order_by("position")) if section_ids else [],
        "people": people(),
    }
    if revision_after is None:
        return answer
    events = list(
        run.events.filter(revision__gt=revision_after, revision__lte=run.revision)
        .select_related("item")
        .only("run_id", "at", "actor_name", "action", "after", "revision", "item_id", "item__text")  # what the feed shows
        .order_by("-at", "-id")[:FEED_LENGTH]
    )
    # A full feed's worth of events: the page may have missed more than it shows, so the feed
    # goes whole, and whether a panel moved is asked of every event since.
    behind = len(events) == FEED_LENGTH
    if behind:
        signoff_moved, notes_moved = _panels_moved(run, revision_after)
    else:
        signoff_moved = any(e.action.startswith(SIGNOFF_PANEL_ACTIONS) for e in events)
        notes_moved = any(e.action == "note.add" and e.item_id is None for e in events)
    answer["new_events"] = [] if behind else events
    answer["events"] = events if behind else []
    # The count of open items moves with nearly every tick; while it stays above zero only the
    # panel's count line changes (the form offers the gate override only while items are open).
    gate_moved = gate_shown is not None and gate_shown != str(run.gate_open)
    gate_crossed = gate_moved and (gate_shown in ("", "0") or not run.gate_open)
    answer["show_signoff"] = signoff_moved or gate_crossed
    answer["show_gate"] = gate_moved and not answer["show_signoff"]
    answer["show_run_notes"] = notes_moved
    if answer["show_signoff"]:
        answer.update(signoffs=run_signoffs(run), standing=run_signoff_standing(run))
    if answer["show_run_notes"]:
        answer["run_notes"] = _attach_notes(run, [], run_notes=True)
    return answer


def failing_verifications():
    """Checked items in open runs whose latest finished check failed (a re-run in flight hides nothing)."""
    latest = (
        VerificationResult.objects.filter(item=OuterRef("item"), status__in=VerificationStatus.finished())
        .order_by("-queued_at", "-id")
        .values("pk")[:1]
    )
    return (
        VerificationResult.objects.filter(
            run__status="in_progress", status__in=[VerificationStatus.FAILED, VerificationStatus.ERROR], pk=Subquery(latest)
        )
        .select_related("item", "run__project", "run__environment")
        .order_by("-queued_at")
    )


def moment_param(value: str | None, *, end: bool):
    """An ISO 8601 date or time from a filter; a bare `until` date includes that whole day."""
    if not value:
        return None
    from datetime import datetime, time, timedelta
    from datetime import timezone as dt_timezone

    from django.utils import timezone
    from django.utils.dateparse import parse_date, parse_datetime

    from .errors import RuleError

    try:
        # A bare date first: Python 3.11's fromisoformat (inside parse_datetime) reads
        # "2026-03-01" as that midnight, and `until` would leave out the day it names.
        day = parse_date(value) if len(value) == 10 else None
        moment = parse_datetime(value) if day is None else None
        if moment is None:
            if day is None:
                raise ValueError
            moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
            if end:
                moment -= timedelta(microseconds=1)
    except (ValueError, OverflowError):
        raise RuleError(f"{value!r} is not an ISO 8601 date or time.") from None
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # The database compares in UTC: a moment at the calendar's edge must still have one.
        moment.astimezone(dt_timezone.utc)
    except (ValueError, OverflowError):
        raise RuleError(f"{value!r} is too far from today to search by.") from None
    return moment
