"""What managers read about many runs: the filtered history, its rows, the reports, and two runs
side by side.

Every page here runs a fixed number of queries however many runs match, and aggregates in the
database: the history sorts and sums the counters the kernel keeps on each run (items_done,
items_blocked, ...), never a join over the items; the reports group and count in SQL and bring
back only the rows a chart draws.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Window,
)
from django.db.models.functions import Coalesce, Now, RowNumber, TruncMonth, TruncWeek
from django.http import QueryDict

from . import selectors
from .choices import ItemState, RunStatus, VerificationStatus
from .errors import RuleError
from .models import Environment, Note, Project, Run, RunItem, RunSection, Signoff, VerificationResult
from .serializers import run_row_json

PAGE_SIZE = 50
TEXT_MAX = 200
FAILING = (VerificationStatus.FAILED, VerificationStatus.ERROR)
GONE_LIVE = (RunStatus.COMPLETED, RunStatus.ROLLED_BACK)

# Column -> what it sorts on. Counts are the run's own counters, kept by the kernel.
SORTS = {
    "started": "started_at",
    "version": "version_label",
    "project": "project__name",
    "environment": "environment__name",
    "template": "template_name",
    "status": "status",
    "duration": "duration",
    "done": "items_done",
    "blocked": "items_blocked",
    "skipped": "items_skipped",
    "open": "gate_open",
    "live": "completed_at",
}
NULLABLE_SORTS = {"completed_at", "duration"}
ITEM_STATES = (ItemState.BLOCKED, ItemState.SKIPPED)


def _clean(value: str | None) -> str:
    """A filter's text: trimmed, bounded, without control characters (they never match a name)."""
    value = (value or "").strip()[:TEXT_MAX]
    return "".join(ch for ch in value if ch.isprintable())


@dataclass
class HistoryFilters:
    """The filters of /history/ and /reports/, as they live in the URL."""

    project: str = ""
    environment: str = ""
    template: str = ""
    statuses: list[str] = field(default_factory=list)
    person: str = ""
    since: str = ""
    until: str = ""
    q: str = ""
    # Drill-downs from the reports' charts: runs where this item was blocked or skipped, where
    # a check of this kind (and item) failed, where the gate was overridden.
    item: str = ""
    item_state: str = ""
    kind: str = ""
    check: str = ""
    override: bool = False
    sort: str = "-started"
    errors: list[str] = field(default_factory=list)
    since_at: object = None
    until_at: object = None

    KEYS = ("project", "environment", "template", "person", "since", "until", "q", "item", "item_state", "kind", "check")

    @classmethod
    def from_query(cls, query: QueryDict) -> HistoryFilters:
        f = cls(**{key: _clean(query.get(key)) for key in cls.KEYS})
        for status in query.getlist("status"):
            status = _clean(status)
            if not status:
                continue
            if status in RunStatus.values:
                f.statuses.append(status)
            else:
                f.errors.append(f"{status!r} is not a status: use one of {', '.join(RunStatus.values)}.")
        if f.item_state and f.item_state not in ITEM_STATES:
            f.errors.append(f"{f.item_state!r} is not blocked or skipped.")
            f.item_state = ""
        f.override = query.get("override", "") in ("1", "true", "yes", "on")
        for name, end in (("since", False), ("until", True)):
            try:
                setattr(f, f"{name}_at", selectors.moment_param(getattr(f, name), end=end))
            except RuleError as exc:
                f.errors.append(f"{name}: {exc.message}")
        sort = _clean(query.get("sort")) or "-started"
        if sort.lstrip("-") in SORTS:
            f.sort = sort
        else:
            f.errors.append(f"Cannot sort by {sort!r}: sort by one of {', '.join(SORTS)}.")
        return f

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, key) for key in self.KEYS) and not self.statuses and not self.override

    def params(self, **changes) -> QueryDict:
        """The filters as a query string (sort kept), with some changed: for links and exports."""
        query = QueryDict(mutable=True)
        values = {key: getattr(self, key) for key in self.KEYS}
        values.update({"status": self.statuses, "override": "1" if self.override else "", "sort": self.sort if self.sort != "-started" else ""})
        values.update(changes)
        for key, value in values.items():
            if isinstance(value, (list, tuple)):
                if any(value):
                    query.setlist(key, [str(v) for v in value if v])
            elif value:
                query[key] = str(value)
        return query

    def url(self, path: str, **changes) -> str:
        query = self.params(**changes).urlencode()
        return f"{path}?{query}" if query else path

    def sort_links(self) -> dict[str, dict]:
        """For each sortable column: the link that sorts by it (flipping the order when it is
        the current one) and an arrow when it is."""
        current, descending = self.sort.lstrip("-"), self.sort.startswith("-")
        links = {}
        for column in SORTS:
            if column == current:
                links[column] = {"sort": column if descending else f"-{column}", "arrow": "↓" if descending else "↑"}
            else:
                first_descending = column in ("started", "duration", "done", "blocked", "skipped", "open", "live")
                links[column] = {"sort": f"-{column}" if first_descending else column, "arrow": ""}
        return links

    def hidden_fields(self) -> list[tuple[str, str]]:
        """What the filter form keeps that it has no field for: drill-downs, several statuses, the sort."""
        fields = [(key, getattr(self, key)) for key in ("item", "item_state", "kind", "check") if getattr(self, key)]
        if self.override:
            fields.append(("override", "1"))
        if len(self.statuses) > 1:
            fields += [("status", s) for s in self.statuses]
        if self.sort != "-started":
            fields.append(("sort", self.sort))
        return fields

    def chips(self) -> list[dict]:
        """The drill-down filters in force, each with the link that drops it."""
        out = []
        if self.item:
            out.append({"label": f"item {self.item_state or 'blocked or skipped'}: {self.item}", "drop": {"item": "", "item_state": ""}})
        if self.kind or self.check:
            out.append({"label": f"failed {self.kind or ''} check{': ' + self.check if self.check else ''}", "drop": {"kind": "", "check": ""}})
        if self.override:
            out.append({"label": "gate overridden", "drop": {"override": ""}})
        if len(self.statuses) > 1:
            out.append({"label": " or ".join(RunStatus(s).label.lower() for s in self.statuses), "drop": {"status": []}})
        for chip in out:
            chip["url"] = self.url("", **chip["drop"])
        return out


def duration_expression():
    """Start to go-live; for an aborted run, to its end; for an open one, so far."""
    return ExpressionWrapper(Coalesce("completed_at", "ended_at", Now()) - F("started_at"), output_field=DurationField())


def person_id(username: str) -> int | None:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()


def history_queryset(f: HistoryFilters, *, ordered: bool = True):
    """The runs matching the filters; the same filters the API's history takes, and more."""
    qs = selectors.run_history(template=f.template or None, since=f.since_at, until=f.until_at)
    # Project and environment by id, looked up first: filtering runs through the names' joins
    # left PostgreSQL guessing one matching run, and reading every item of the real thousands
    # one run at a time in the reports.
    if f.project:
        qs = qs.filter(project_id__in=list(Project.objects.filter(name=f.project).values_list("pk", flat=True)))
    if f.environment:
        environments = Environment.objects.filter(name=f.environment)
        if f.project:
            environments = environments.filter(project__name=f.project)
        qs = qs.filter(environment_id__in=list(environments.values_list("pk", flat=True)))
    if f.statuses:
        qs = qs.filter(status__in=f.statuses)
    if f.person:
        # Started, ticked (the last hand on an item) or signed: one EXISTS each, by key.
        pk = person_id(f.person)
        if pk is None:
            qs = qs.none()
        else:
            qs = qs.filter(
                Q(started_by_id=pk)
                | Exists(Signoff.objects.filter(run=OuterRef("pk"), user_id=pk))
                | Exists(RunItem.objects.filter(run=OuterRef("pk"), changed_by_id=pk))
            )
    if f.q:
        qs = qs.filter(
            Q(version_label__icontains=f.q)
            | Q(status_reason__icontains=f.q)
            | Exists(Note.objects.filter(run=OuterRef("pk"), body__icontains=f.q))
        )
    if f.item:
        qs = qs.filter(Exists(RunItem.objects.filter(run=OuterRef("pk"), text=f.item, state__in=[f.item_state] if f.item_state else ITEM_STATES)))
    if f.kind or f.check:
        failed = VerificationResult.objects.filter(run=OuterRef("pk"), status__in=FAILING)
        if f.kind:
            failed = failed.filter(kind=f.kind)
        if f.check:
            failed = failed.filter(item__text=f.check)
        qs = qs.filter(Exists(failed))
    if f.override:
        qs = qs.filter(Exists(Signoff.objects.filter(run=OuterRef("pk"), override_reason__gt="")))
    qs = qs.annotate(duration=duration_expression())
    if ordered:
        column = SORTS[f.sort.lstrip("-")]
        descending = f.sort.startswith("-")
        if column in NULLABLE_SORTS:
            qs = qs.order_by(F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True), "-id")
        else:
            # Plain order on columns that are never null, so the newest-first default walks
            # the (started_at, id) index and stops at the page instead of sorting every run.
            qs = qs.order_by(f"-{column}" if descending else column, "-id" if descending else "id")
    return qs


PROBING = ("person", "q", "item", "kind", "check")


def settled(qs, f: HistoryFilters):
    """The runs to report on, found once. A person, text or drill-down filter probes other
    tables for every run; the reports' ten aggregates would each repeat those probes, so
    they are asked once here and the aggregates read the runs by key."""
    if not (f.override or any(getattr(f, key) for key in PROBING)):
        return qs
    return Run.objects.filter(pk__in=list(qs.order_by().values_list("pk", flat=True)))


def history_rows(runs: list[Run]) -> list[Run]:
    """What each row shows beyond the run's own columns, for a page of runs: who signed (and
    overrides), failed checks. Two queries for the whole page."""
    ids = [r.pk for r in runs]
    signed: dict[int, list] = {}
    for run_id, role, username, decision, override in (
        Signoff.objects.filter(run_id__in=ids, stale_at__isnull=True)
        .order_by("at", "id")
        .values_list("run_id", "role", "user__username", "decision", "override_reason")
    ):
        signed.setdefault(run_id, []).append({"role": role or "Lead", "user": username, "decision": decision, "override": override})
    failed = dict(
        VerificationResult.objects.filter(run_id__in=ids, status__in=FAILING)
        .order_by()
        .values("run_id")
        .annotate(n=Count("item_id", distinct=True))
        .values_list("run_id", "n")
    )
    for run in runs:
        run.signers = signed.get(run.pk, [])
        run.overrides = [s["override"] for s in run.signers if s["override"]]
        run.failed_checks = failed.get(run.pk, 0)
        run.duration_text = duration_text(run.duration)
    return runs


def duration_text(duration: timedelta | None) -> str:
    """"3 h 05 min", "2 d 4 h", "12 min": what a person reads in a column."""
    if duration is None:
        return ""
    minutes = max(0, int(duration.total_seconds() // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def row_json(run: Run, base_url: str) -> dict:
    return {
        **run_row_json(run, f"{base_url}{run.get_absolute_url()}"),
        "template_version": run.template_version_number,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "duration_s": int(run.duration.total_seconds()) if run.duration is not None else None,
        "done": run.items_done,
        "skipped": run.items_skipped,
        "blocked": run.items_blocked,
        "total": run.items_total,
        "failed_checks": run.failed_checks,
        "signed_by": [{"role": s["role"], "user": s["user"], "decision": s["decision"], "override_reason": s["override"] or None} for s in run.signers],
        "rolled_back": run.status == RunStatus.ROLLED_BACK,
        "status_reason": run.status_reason or None,
    }


def history_export_rows(qs, base_url: str, chunk: int = 1000):
    """Every matching run for an export, a chunk at a time (two queries more per chunk)."""
    qs = qs.select_related("project", "environment", "started_by")
    start = 0
    while True:
        runs = list(qs[start : start + chunk])
        if not runs:
            return
        for run in history_rows(runs):
            yield row_json(run, base_url)
        start += chunk


def history_stats(qs) -> dict:
    """Totals by status and how many runs passed the gate with an override, in one grouped
    query (each pass over a filtered history costs the filters' probes once more)."""
    # Uncorrelated, so PostgreSQL reads the few overrides once and looks each run up in a hash.
    overridden = Q(pk__in=Signoff.objects.filter(override_reason__gt="").values("run_id"))
    rows = list(qs.order_by().values("status").annotate(n=Count("id"), overridden=Count("id", filter=overridden)))
    totals = {row["status"]: row["n"] for row in rows}
    total = sum(totals.values())
    return {
        "total": total,
        "by_status": totals,
        "overrides": sum(row["overridden"] for row in rows),
        "success_rate": round(100 * totals.get(RunStatus.COMPLETED, 0) / total) if total else None,
    }


# --- Reports ----------------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5); SQLite has none (see monthly_trend's fallback)."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"


WEEKS_SHOWN = 26
MONTHS_SHOWN = 12
OUTCOMES = [
    (RunStatus.COMPLETED, "live", "#1a7f37"),
    (RunStatus.ROLLED_BACK, "rolled back", "#c01c28"),
    (RunStatus.ABORTED, "aborted", "#98a2b3"),
]


def _runs_of(qs, f: HistoryFilters):
    """The filter as a subquery for other tables (nothing at all when there is no filter)."""
    return None if f.is_empty else qs.order_by().values("pk")


def weekly_outcomes(qs) -> list[dict]:
    """Finished runs per week they started, by outcome: one grouped query."""
    rows = (
        qs.order_by()
        .exclude(status=RunStatus.IN_PROGRESS)
        .annotate(week=TruncWeek("started_at"))
        .values("week", "status")
        .annotate(n=Count("id"))
    )
    weeks: dict = {}
    for row in rows:
        weeks.setdefault(row["week"], {})[row["status"]] = row["n"]
    return [{"week": week, **counts} for week, counts in sorted(weeks.items())][-WEEKS_SHOWN:]


def monthly_trend(qs, *, portable: bool | None = None) -> list[dict]:
    """Per month started: runs gone live, rolled back, the change failure rate (rolled back ÷
    gone live), and the median start to go-live. The median is PostgreSQL's percentile_cont
    in the same grouped query; SQLite (`make run`) has none, so there the database sends only
    each month's go-live durations, and the median of those is taken here."""
    gone_live = Q(completed_at__isnull=False)
    rows = qs.order_by().annotate(month=TruncMonth("started_at")).values("month")
    live_duration = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    aggregates = {
        "live": Count("id", filter=gone_live),
        "rolled_back": Count("id", filter=Q(status=RunStatus.ROLLED_BACK)),
    }
    if portable is None:
        portable = connection.vendor != "postgresql"
    if not portable:
        aggregates["median"] = Median(live_duration, filter=gone_live, output_field=DurationField())
    months = {row["month"]: row for row in rows.annotate(**aggregates).order_by("month")}
    if portable:
        months_durations: dict = {}
        for month, duration in qs.order_by().filter(gone_live).annotate(month=TruncMonth("started_at"), d=live_duration).values_list("month", "d"):
            months_durations.setdefault(month, []).append(duration)
        for month, row in months.items():
            found = months_durations.get(month)
            row["median"] = timedelta(seconds=statistics.median(d.total_seconds() for d in found)) if found else None
    out = []
    for month, row in sorted(months.items())[-MONTHS_SHOWN:]:
        row["rate"] = round(100 * row["rolled_back"] / row["live"], 1) if row["live"] else None
        row["median_hours"] = round(row["median"].total_seconds() / 3600, 1) if row.get("median") is not None else None
        out.append(row)
    return out


def blocked_and_skipped(qs, f: HistoryFilters, *, per_template: int = 6) -> list[dict]:
    """The items most often blocked or skipped, per template, with their commonest reasons:
    two grouped queries (the top items, then their reasons)."""
    items = RunItem.objects.filter(state__in=ITEM_STATES)
    runs = _runs_of(qs, f)
    if runs is not None:
        items = items.filter(run_id__in=runs)
    ranked = (
        items.values("run__template_name", "text", "state")
        .annotate(n=Count("*"))  # not Count("id"): the index holds no id, and reading the table is what it saves
        .annotate(rank=Window(RowNumber(), partition_by=[F("run__template_name")], order_by=[F("n").desc(), F("text").asc()]))
        .filter(rank__lte=per_template)
        .order_by("run__template_name", "rank")
    )
    top = [
        {"template": row["run__template_name"], "text": row["text"], "state": row["state"], "n": row["n"], "reasons": []}
        for row in ranked
    ]
    # By text alone, which the index leads with, then matched to the top rows here: an OR of
    # (template, text, state) triples made PostgreSQL read the table instead of the index.
    wanted = {(row["template"], row["text"], row["state"]) for row in top}
    reasons: dict = {}
    for row in (
        # Never an empty list, which Django answers without asking: the page runs the same
        # queries whatever the data, as the query-count story holds it to.
        items.filter(text__in=[row["text"] for row in top] or [""])
        .values("run__template_name", "text", "state", "reason")
        .annotate(n=Count("*"))
        .order_by("-n", "reason")
    ):
        key = (row["run__template_name"], row["text"], row["state"])
        if key in wanted:
            reasons.setdefault(key, []).append({"reason": row["reason"] or "—", "n": row["n"]})
    for row in top:
        row["reasons"] = reasons.get((row["template"], row["text"], row["state"]), [])[:3]
    return top


def verification_failures(qs, f: HistoryFilters, *, limit: int = 10) -> dict:
    """Failure rate per kind of check (finished results), and the checks that fail most."""
    results = VerificationResult.objects.filter(status__in=VerificationStatus.finished())
    runs = _runs_of(qs, f)
    if runs is not None:
        results = results.filter(run_id__in=runs)
    kinds = list(
        results.order_by().values("kind").annotate(total=Count("*"), failed=Count("status", filter=Q(status__in=FAILING))).order_by("kind")
    )
    for row in kinds:
        row["rate"] = round(100 * row["failed"] / row["total"], 1) if row["total"] else 0
    worst = list(
        # Results exist only for items with a check; saying so lets PostgreSQL read the item's
        # text from the small index of checked items (migration 0007) instead of the table.
        results.filter(status__in=FAILING)
        .exclude(item__check_kind="")
        .values("run__template_name", "item__text", "kind")
        .annotate(n=Count("*"), runs=Count("run_id", distinct=True))
        .order_by("-n", "item__text")[:limit]
    )
    return {"kinds": kinds, "worst": worst}


SLOW_SECTION_RUNS = 100


def slowest_sections(qs, *, limit: int = 10) -> dict:
    """Sections by the average time from their first tick to their last, over the latest
    SLOW_SECTION_RUNS runs that went live (after-go-live sections left out: they wait by design).

    Bounded on purpose: a section's span is a min and a max over its items, and ten thousand
    runs of them would be three million rows to read for a chart about recent habits. The
    database finds each section's span (one grouped query over those runs' sections and their
    items); the few thousand spans are averaged per section title here.
    """
    latest = qs.order_by().filter(completed_at__isnull=False).order_by("-started_at").values("pk")[:SLOW_SECTION_RUNS]
    spans = (
        RunSection.objects.filter(run_id__in=Subquery(latest), after_go_live=False, roles=[])
        .annotate(
            span=ExpressionWrapper(
                Max("items__changed_at") - Min("items__changed_at"), output_field=DurationField()
            )
        )
        .filter(span__isnull=False)
        .order_by()
        .values_list("run__template_name", "title", "span")
    )
    totals: dict = {}
    for template, title, span in spans:
        seconds, runs = totals.get((template, title), (0.0, 0))
        totals[(template, title)] = (seconds + span.total_seconds(), runs + 1)
    rows = [
        {"run__template_name": template, "title": title, "minutes": round(seconds / runs / 60), "runs": runs}
        for (template, title), (seconds, runs) in totals.items()
    ]
    rows.sort(key=lambda r: (-r["minutes"], r["title"]))
    return {"rows": rows[:limit], "runs": SLOW_SECTION_RUNS}


def gate_overrides(qs, f: HistoryFilters, *, limit: int = 15) -> dict:
    """Approvals that passed the gate with a reason: the commonest reasons, and the latest ones."""
    signoffs = Signoff.objects.exclude(override_reason="")
    runs = _runs_of(qs, f)
    if runs is not None:
        signoffs = signoffs.filter(run_id__in=runs)
    reasons = list(signoffs.values("override_reason").annotate(n=Count("id")).order_by("-n", "override_reason")[:limit])
    latest = list(
        signoffs.select_related("user", "run__project", "run__environment").order_by("-at", "-id")[:limit]
    )
    return {"reasons": reasons, "latest": latest, "total": sum(r["n"] for r in reasons)}


# --- Two runs side by side ----------------------------------------------------------------------


def previous_run(run: Run) -> Run | None:
    """The run before this one of the same template, project and environment."""
    return (
        Run.objects.filter(template_id=run.template_id, project_id=run.project_id, environment_id=run.environment_id)
        .filter(Q(started_at__lt=run.started_at) | Q(started_at=run.started_at, pk__lt=run.pk))
        .exclude(pk=run.pk)
        .order_by("-started_at", "-id")
        .first()
    )


def _side(run: Run) -> dict:
    """One run's items keyed by section path and text (the n-th of the same text counted), its
    notes by item, and its sections' first and last tick: four queries."""
    sections = {s.pk: s for s in run.sections.order_by("position")}
    items = list(run.items.order_by("position"))
    results = {}
    latest = VerificationResult.objects.filter(run=run).order_by("item_id", "-queued_at", "-id")
    if connection.vendor == "postgresql":
        latest = latest.distinct("item_id")
        results = {r.item_id: r for r in latest.only("id", "item_id", "status", "message")}
    else:
        for r in latest.only("id", "item_id", "status", "message"):
            results.setdefault(r.item_id, r)
    notes: dict = {}
    for note in Note.objects.filter(run=run, item__isnull=False).select_related("author").order_by("created_at", "id"):
        notes.setdefault(note.item_id, []).append(note)
    keyed, seen = {}, {}
    for item in items:
        path = tuple(sections[pk].title.strip() for pk in reversed(item.section_path) if pk in sections)
        base = (path, item.text.strip())
        seen[base] = seen.get(base, 0) + 1
        item.key = (*base, seen[base])
        item.path = path
        item.result = results.get(item.pk)
        item.note_list = notes.get(item.pk, [])
        keyed[item.key] = item
    spans = {
        row["section_id"]: row
        for row in run.items.filter(changed_at__isnull=False)
        .order_by()
        .values("section_id")
        .annotate(first=Min("changed_at"), last=Max("changed_at"), ticked=Count("id"))
    }
    section_rows = []
    for pk, section in sections.items():
        if section.roles:
            continue
        span = spans.get(pk)
        section_rows.append({
            "title": section.title,
            "path": tuple(sections[p].title.strip() for p in _section_path(sections, section)),
            "first": span["first"] if span else None,
            "last": span["last"] if span else None,
            "minutes": round((span["last"] - span["first"]).total_seconds() / 60) if span else None,
        })
    return {"run": run, "items": items, "keyed": keyed, "sections": section_rows}


def _section_path(sections: dict, section) -> list[int]:
    path = []
    while section is not None:
        path.insert(0, section.pk)
        section = sections.get(section.parent_id)
    return path


def _note_texts(item) -> list[str]:
    return [n.body for n in getattr(item, "note_list", [])]


def run_compare(a: Run, b: Run) -> dict:
    """Two runs item by item, aligned by section path and item text across template versions,
    differences first; their sections' durations side by side."""
    left, right = _side(a), _side(b)
    rows = []
    # B's order; an item only in A goes after the last item before it that both runs share.
    order = {item.key: (index, 0) for index, item in enumerate(right["items"])}
    anchor = (-1, 0)
    for index, item in enumerate(left["items"]):
        if item.key in order:
            anchor = order[item.key]
        else:
            order[item.key] = (anchor[0], index + 1)
    for key in sorted(set(left["keyed"]) | set(right["keyed"]), key=lambda k: order[k]):
        one, two = left["keyed"].get(key), right["keyed"].get(key)
        differences = []
        if one is None or two is None:
            differences.append("only in " + ("B" if one is None else "A"))
        else:
            if one.state != two.state:
                differences.append("state")
            if (one.changed_by_name or "") != (two.changed_by_name or ""):
                differences.append("who")
            if (one.verdict or "") != (two.verdict or ""):
                differences.append("verdict")
            if (one.reason or "") != (two.reason or "") or _note_texts(one) != _note_texts(two):
                differences.append("notes")
        rows.append({"path": key[0], "text": key[1], "a": one, "b": two, "sides": [one, two], "differences": differences, "only": one is None or two is None})
    # What changed the launch first (an item only in one version, another state or verdict),
    # then notes, then who did it; checklist order within each.
    weight = {"state": 1, "verdict": 2, "notes": 3, "who": 4}
    changed = sorted(
        (r for r in rows if r["differences"]),
        key=lambda r: min(0 if d.startswith("only") else weight[d] for d in r["differences"]),
    )
    same = [r for r in rows if not r["differences"]]
    by_path: dict = {}
    for side, name in ((left, "a"), (right, "b")):
        for s in side["sections"]:
            by_path.setdefault(s["path"], {"title": s["title"], "path": s["path"]})[name] = s
    sections = list(by_path.values())
    for s in sections:
        a_minutes = s.get("a", {}).get("minutes")
        b_minutes = s.get("b", {}).get("minutes")
        s["delta"] = b_minutes - a_minutes if a_minutes is not None and b_minutes is not None else None
    return {
        "a": a,
        "b": b,
        "changed": changed,
        "same": same,
        "sections": sections,
        "only_a": sum(1 for r in rows if r["b"] is None),
        "only_b": sum(1 for r in rows if r["a"] is None),
    }

