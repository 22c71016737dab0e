"""The run report: what was done, by whom and when, what the checks saw, who signed.

Markdown in the seeds' own style (`[x]`, `[~]`, `[!]`, `[-]`), JSON and CSV. Secret variables
never appear: checks already redact them from messages and evidence, and variables are not listed
with their values when secret.
"""

from __future__ import annotations

import csv
import io
import json

from .choices import STATE_TO_MARKER
from .models import Run
from .selectors import run_items, run_signoffs
from .serializers import csv_safe, run_json


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def _is_signoff_title(title: str) -> bool:
    return "".join(ch for ch in title.lower() if ch.isalpha()) in ("signoff", "signoffs", "approvals")


def _report_data(run: Run) -> dict:
    items = run_items(run)
    notes = list(run.notes.select_related("author").order_by("created_at", "id"))
    notes_by_item: dict[int | None, list] = {}
    for note in notes:
        notes_by_item.setdefault(note.item_id, []).append(note)
    return {
        "items": items,
        "progress": run.progress,
        "notes": notes_by_item,
        "signoffs": run_signoffs(run),
        "sections": list(run.sections.order_by("position")),
    }


def run_report_markdown(run: Run) -> str:
    data = _report_data(run)
    out: list[str] = []
    out.append(f"# {run.template_name}: {run.project.name} {run.version_label} → {run.environment.name}")
    out.append("")
    status = run.get_status_display()
    if run.completed_at:
        status += f" since {_when(run.completed_at)}"
    if run.status_reason:
        status += f" ({run.status_reason})"
    p = data["progress"]
    out.append(f"**Status:** {status}  ")
    out.append(f"**Started:** {_when(run.started_at)} by {run.started_by.get_username()}  ")
    out.append(f"**Template:** {run.template_name} v{run.template_version_number}  ")
    out.append(f"**Progress:** {p['done']} done, {p['skipped']} skipped, {p['blocked']} blocked, {p['in_progress']} in progress of {p['total']}")
    out.append("")
    for note in data["notes"].get(None, []):
        out.append(f"> **Note** by {note.author.get_username()}, {_when(note.created_at)}:")
        out.append(_indent(note.body, "> "))
        out.append("")

    items_by_section: dict[int | None, list] = {}
    for item in data["items"]:
        items_by_section.setdefault(item.section_id, []).append(item)

    def write_items(items):
        for item in items:
            pad = "  " * item.depth
            line = f"{pad}- [{STATE_TO_MARKER.get(item.state, ' ')}] {item.text}"
            who = []
            if item.changed_by_name and item.state != "todo":
                who.append(f"{item.get_state_display().lower()} by {item.changed_by_name}, {_when(item.changed_at)}")
            if item.assignee_id:
                who.append(f"assigned to {item.assignee.get_username()}")
            if not item.required:
                who.append("after go-live" if item.after_go_live else "optional")
            if who:
                line += f" — _{'; '.join(who)}_"
            out.append(line)
            sub = pad + "  "
            if item.reason:
                out.append(f"{sub}Reason: {item.reason}")
            verification = item.latest_verification
            if verification is not None:
                took = f", {verification.duration_ms} ms" if verification.duration_ms is not None else ""
                out.append(f"{sub}Verification ({verification.kind}): **{verification.status}**{took}: {verification.message}")
                if verification.evidence:
                    out.append(f"{sub}Evidence: `{json.dumps(verification.evidence, sort_keys=True, default=str)}`")
            for note in data["notes"].get(item.pk, []):
                out.append(f"{sub}> Note by {note.author.get_username()}, {_when(note.created_at)}:")
                out.append(_indent(note.body, sub + "> "))

    write_items(items_by_section.get(None, []))
    for section in data["sections"]:
        if section.roles or (_is_signoff_title(section.title) and not items_by_section.get(section.pk)):
            # The checklist's own sign-off block: the report's Sign-Off below says who signed.
            continue
        out.append("")
        out.append("#" * max(2, section.level) + " " + section.title)
        if section.after_go_live:
            out.append("_After go-live_")
        out.append("")
        write_items(items_by_section.get(section.pk, []))

    out.append("")
    out.append("## Sign-Off")
    out.append("")
    roles = run.required_roles or [""]
    by_role: dict[str, list] = {}
    for signoff in data["signoffs"]:
        by_role.setdefault(signoff.role, []).append(signoff)
    for role in roles:
        current = [s for s in by_role.get(role, []) if not s.stale]
        latest = current[-1] if current else None
        label = role or "Lead approval"
        if latest is None:
            out.append(f"- [ ] {label}")
        else:
            mark = "x" if latest.decision == "approve" else "!"
            verb = "approved" if latest.decision == "approve" else "rejected"
            line = f"- [{mark}] {label} — {verb} by {latest.user.get_username()}, {_when(latest.at)}"
            if latest.comment:
                line += f": {latest.comment}"
            out.append(line)
            if latest.override_reason:
                out.append(f"  - **Gate overridden:** {latest.override_reason}")
        for old in by_role.get(role, []):
            if old is latest:
                continue
            state = "stale" if old.stale else "superseded"
            out.append(f"  - {old.get_decision_display()} by {old.user.get_username()}, {_when(old.at)} ({state})")
    out.append("")
    return "\n".join(out)


def run_report_json(run: Run, *, base_url: str = "") -> str:
    data = _report_data(run)
    report = run_json(run, base_url=base_url, items=data["items"], signoffs=data["signoffs"], notes=data["notes"])
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = [
    "item_id", "section", "depth", "title", "state", "required", "after_go_live", "reason", "assignee",
    "changed_by", "changed_at", "verification_status", "verification_message", "verification_ms", "notes",
]


def run_report_csv(run: Run) -> str:
    data = _report_data(run)
    sections = {s.pk: s.title for s in data["sections"]}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for i in data["items"]:
        v = i.latest_verification
        writer.writerow([csv_safe(cell) for cell in [
            i.pk, sections.get(i.section_id, ""), i.depth, i.text, i.state, i.required, i.after_go_live, i.reason,
            i.assignee.get_username() if i.assignee_id else "", i.changed_by_name, i.changed_at.isoformat() if i.changed_at else "",
            v.status if v else "", v.message if v else "", v.duration_ms if v and v.duration_ms is not None else "",
            " | ".join(f"{n.author.get_username()}: {n.body}" for n in data["notes"].get(i.pk, [])),
        ]])
    return buffer.getvalue()


FORMATS = {
    "md": ("text/markdown; charset=utf-8", run_report_markdown),
    "json": ("application/json", run_report_json),
    "csv": ("text/csv; charset=utf-8", run_report_csv),
}
