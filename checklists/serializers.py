"""The JSON shapes of runs, items, sign-offs and events: one definition for the API and the reports."""

from __future__ import annotations


def verification_json(result) -> dict | None:
    if result is None:
        return None
    return {
        "kind": result.kind,
        "status": result.status,
        "message": result.message,
        "evidence": result.evidence,
        "duration_ms": result.duration_ms,
        "at": (result.finished_at or result.started_at or result.queued_at).isoformat(),
    }


def run_row_json(run, html_url: str) -> dict:
    """A run as a line of history: the API's run list and the history page's JSON export."""
    return {
        "id": run.pk,
        "html_url": html_url,
        "status": run.status,
        "template": run.template_name,
        "project": run.project.name,
        "environment": run.environment.name,
        "version": run.version_label,
        "started_by": run.started_by.get_username(),
        "started_at": run.started_at.isoformat(),
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
    }


def item_json(item) -> dict:
    return {
        "id": item.pk,
        "title": item.text,
        "section": {"id": item.section_id, "title": item.section.title} if item.section_id else None,
        "depth": item.depth,
        "state": item.state,
        "reason": item.reason,
        "required": item.required,
        "after_go_live": item.after_go_live,
        "assignee": item.assignee.get_username() if item.assignee_id else None,
        "changed_by": item.changed_by_name or None,
        "changed_at": item.changed_at.isoformat() if item.changed_at else None,
        "check": {"kind": item.check_kind, "params": item.check_params} if item.check_kind else None,
        "verification": verification_json(getattr(item, "latest_verification", None)),
    }


def signoff_json(signoff) -> dict:
    return {
        "role": signoff.role or None,
        "decision": signoff.decision,
        "user": signoff.user.get_username(),
        "comment": signoff.comment,
        "at": signoff.at.isoformat(),
        "stale": signoff.stale,
        "override_reason": signoff.override_reason or None,
    }


def note_json(note) -> dict:
    return {
        "id": note.pk,
        "item": note.item_id,
        "author": note.author.get_username(),
        "body": note.body,
        "at": note.created_at.isoformat(),
    }


def event_json(event) -> dict:
    answer = {"at": event.at.isoformat(), "actor": event.actor_name, "action": event.action}
    if event.item_id:
        answer["item"] = event.item_id
    if event.before is not None:
        answer["before"] = event.before
    if event.after is not None:
        answer["after"] = event.after
    return answer


def csv_safe(value):
    """A cell a spreadsheet will show as text, never run as a formula (item text, notes)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def run_json(run, *, base_url: str, items, signoffs, notes: dict | None = None) -> dict:
    """A run as the API answers it and the JSON report exports it (CONTRACT.md, `GET /api/v1/runs/{id}`).

    With `notes` ({item id or None: [Note]}) the report's notes ride along, on the run and on
    each item.
    """
    answer = {
        "id": run.pk,
        "html_url": base_url + run.get_absolute_url(),
        "status": run.status,
        "status_reason": run.status_reason,
        "template": {"id": run.template_id, "name": run.template_name, "version": run.template_version_number},
        "project": run.project.name,
        "environment": run.environment.name,
        "version": run.version_label,
        "revision": run.revision,
        "started_by": run.started_by.get_username(),
        "started_at": run.started_at.isoformat(),
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "progress": {k: run.progress[k] for k in ("done", "skipped", "blocked", "total")},
        "gate_open": run.gate_open,
        "items": [item_json(i) for i in items],
        "signoffs": [signoff_json(s) for s in signoffs],
        "required_roles": run.required_roles,
        "role_counts": {role: n for role, n in (run.role_counts or {}).items() if n > 1},
        "four_eyes": bool(run.four_eyes),
    }
    if notes is not None:
        answer["notes"] = [note_json(n) for n in notes.get(None, [])]
        for item_answer in answer["items"]:
            item_answer["notes"] = [note_json(n) for n in notes.get(item_answer["id"], [])]
    return answer
