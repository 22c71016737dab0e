"""Every read a page or the API needs, each with a fixed number of queries however long the run."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, Subquery

from .choices import ItemState, VerificationStatus
from .models import ChecklistTemplate, Run, RunItem, TemplateVersion, VerificationResult


def template_get(ref: str | int) -> ChecklistTemplate | None:
    """An all-digit reference is an id, anything else a slug."""
    ref = str(ref).strip()
    qs = ChecklistTemplate.objects.all()
    return qs.filter(pk=int(ref)).first() if ref.isdigit() else qs.filter(slug=ref).first()


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


def run_items(run: Run) -> list[RunItem]:
    """The run's items in checklist order, each with its latest verification and its latest
    finished one (two queries)."""
    latest = VerificationResult.objects.filter(item=OuterRef("pk")).order_by("-queued_at", "-id")
    finished = latest.filter(status__in=VerificationStatus.finished())
    items = list(
        run.items.select_related("section", "assignee")
        .annotate(
            latest_verification_id=Subquery(latest.values("pk")[:1]),
            latest_finished_id=Subquery(finished.values("pk")[:1]),
        )
        .order_by("position")
    )
    ids = {i.latest_verification_id for i in items if i.latest_verification_id} | {i.latest_finished_id for i in items if i.latest_finished_id}
    results = VerificationResult.objects.in_bulk(list(ids)) if ids else {}
    for i in items:
        i.latest_verification = results.get(i.latest_verification_id)
        i.latest_finished_verification = results.get(i.latest_finished_id)
    return items


def run_progress(items: list[RunItem]) -> dict:
    counts = {"done": 0, "skipped": 0, "blocked": 0, "in_progress": 0, "total": len(items)}
    for i in items:
        if i.state in counts:
            counts[i.state] += 1
    return counts


def item_gate_problem(item) -> str | None:
    """Why this required item holds go-live back, or None."""
    if not item.is_closed:
        return "skipped without a reason" if item.state == ItemState.SKIPPED else item.state
    latest = getattr(item, "latest_verification", None)
    if latest is not None and latest.status in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        return "verification in progress"
    # An earlier failure still counts until a check finishes with a pass.
    finished = getattr(item, "latest_finished_verification", None)
    if finished is not None and finished.status in (VerificationStatus.FAILED, VerificationStatus.ERROR):
        return f"verification {finished.status}"
    return None


def run_open_required(items: list[RunItem]) -> list[RunItem]:
    """What still stands between the run and go-live."""
    return [i for i in items if i.required and item_gate_problem(i) is not None]


def run_get(run_id: int) -> Run | None:
    return (
        Run.objects.select_related("project", "environment", "template", "started_by")
        .filter(pk=run_id)
        .first()
    )


def run_signoffs(run: Run):
    return list(run.signoffs.select_related("user").order_by("at", "id"))


def run_history(*, project=None, environment=None, status=None, template=None, since=None, until=None):
    qs = Run.objects.select_related("project", "environment", "template", "started_by").annotate(
        total=Count("items", distinct=True),
        done=Count("items", filter=Q(items__state=ItemState.DONE), distinct=True),
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
        if str(template).isdigit():
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


def item_is_failing(item) -> bool:
    v = getattr(item, "latest_finished_verification", None)
    return v is not None and v.status in (VerificationStatus.FAILED, VerificationStatus.ERROR)


def item_matches(item, show: str, query: str, user) -> bool:
    if show == "open" and item.state in (ItemState.DONE, ItemState.SKIPPED):
        return False
    if show == "blocked" and item.state != ItemState.BLOCKED:
        return False
    if show == "mine" and item.assignee_id != getattr(user, "pk", None):
        return False
    if show == "failing" and not item_is_failing(item):
        return False
    if query and query.lower() not in item.text.lower():
        return False
    return True


def section_progress(items) -> dict[int | None, dict]:
    progress: dict[int | None, dict] = {}
    for item in items:
        p = progress.setdefault(item.section_id, {"done": 0, "total": 0})
        p["total"] += 1
        if item.state in (ItemState.DONE, ItemState.SKIPPED):
            p["done"] += 1
    return progress


def run_board(run: Run, *, user=None, show: str = "all", query: str = "") -> dict:
    """Everything the run page shows, in a fixed number of queries however many items."""
    from django.contrib.auth import get_user_model

    items = run_items(run)
    notes: dict[int | None, list] = {}
    for note in run.notes.select_related("author").order_by("created_at", "id"):
        notes.setdefault(note.item_id, []).append(note)
    for item in items:
        item.note_list = notes.get(item.pk, [])
        item.failing = item_is_failing(item)
    sections = list(run.sections.order_by("position"))
    per_section = section_progress(items)
    by_section: dict[int | None, list] = {}
    for item in items:
        if item_matches(item, show, query, user):
            by_section.setdefault(item.section_id, []).append(item)
    checks: dict[int | None, int] = {}
    for item in items:
        if item.check_kind:
            checks[item.section_id] = checks.get(item.section_id, 0) + 1
    for section in sections:
        section.check_count = checks.get(section.pk, 0)
        section.visible_items = by_section.get(section.pk, [])
        section.progress = per_section.get(section.pk, {"done": 0, "total": 0})
        section.depth = 0
    depth = {}
    for section in sections:
        section.depth = depth[section.pk] = depth.get(section.parent_id, -1) + 1
    # A section's progress counts its subsections' items too ("Pre-Deployment 41/120").
    by_id = {section.pk: section for section in sections}
    for section in reversed(sections):
        section.progress = dict(section.progress)
    for section in reversed(sections):
        parent = by_id.get(section.parent_id)
        if parent is not None:
            parent.progress["done"] += section.progress["done"]
            parent.progress["total"] += section.progress["total"]
    open_required = run_open_required(items)
    return {
        "items": items,
        "root_items": by_section.get(None, []),
        "sections": [s for s in sections if not s.roles],
        "progress": run_progress(items),
        "run_notes": notes.get(None, []),
        "signoffs": run_signoffs(run),
        "open_required": open_required,
        "events": list(run.events.select_related("item").order_by("-at", "-id")[:30]),
        "people": list(get_user_model().objects.filter(is_active=True).order_by("username").only("id", "username")),
        "show": show if show in FILTERS else "all",
        "query": query,
        "filters": FILTERS,
    }


def run_changes_since(run: Run, revision: int) -> dict:
    """What the poll sends: only the items changed after `revision`, with the totals."""
    board = run_board(run)
    changed = [i for i in board["items"] if i.revision > revision]
    return {**board, "changed": changed}


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


def history_stats(qs) -> dict:
    """Totals and a per-week series for the history chart, in two aggregate queries."""
    from django.db.models.functions import TruncWeek

    totals = {row["status"]: row["n"] for row in qs.order_by().values("status").annotate(n=Count("id", distinct=True))}
    weekly_rows = (
        qs.order_by()
        .annotate(week=TruncWeek("started_at"))
        .values("week", "status")
        .annotate(n=Count("id", distinct=True))
        .order_by("week")
    )
    weeks: dict = {}
    for row in weekly_rows:
        weeks.setdefault(row["week"], {})[row["status"]] = row["n"]
    series = [{"week": week, **counts, "total": sum(counts.values())} for week, counts in sorted(weeks.items())][-26:]
    peak = max((w["total"] for w in series), default=0)
    for index, week in enumerate(series):
        week["x"] = index * 22
        stack = 0
        week["bars"] = []
        for status, colour in (("completed", "#1a7f37"), ("in_progress", "#2458d3"), ("aborted", "#98a2b3"), ("rolled_back", "#c01c28")):
            n = week.get(status, 0)
            if n:
                height = round(100 * n / peak) if peak else 0
                week["bars"].append({"status": status, "n": n, "y": 100 - stack - height, "height": height, "colour": colour})
                stack += height
    overrides = qs.filter(signoffs__override_reason__gt="").values("pk").distinct().count()
    total = sum(totals.values())
    return {
        "total": total,
        "by_status": totals,
        "series": series,
        "width": max(22 * len(series), 22),
        "overrides": overrides,
        "success_rate": round(100 * totals.get("completed", 0) / total) if total else None,
    }


def moment_param(value: str | None, *, end: bool):
    """An ISO 8601 date or time from a filter; a bare `until` date includes that whole day."""
    if not value:
        return None
    from datetime import datetime, time, timedelta

    from django.utils import timezone
    from django.utils.dateparse import parse_date, parse_datetime

    from .models import RuleError

    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is None:
                raise ValueError
            moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
            if end:
                moment -= timedelta(microseconds=1)
    except ValueError:
        raise RuleError(f"{value!r} is not an ISO 8601 date or time.") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment
