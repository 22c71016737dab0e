"""The release gate a pipeline asks about: the newest run of one version, and what holds it.

The answer is read from what the run page's sign-off panel reads (selectors.run_signoff_standing
and run_gate_open_items, both deciding with gate.py), so a pipeline, GitHub and the page never
disagree. Its decision follows the run's status, the one thing that says a launch happened:

  approved   the run went live (completed)
  rejected   it was aborted, or rolled back after going live
  pending    it is in progress
  none       no run of that version in that project and environment
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .choices import RunStatus, VerificationStatus
from .models import Run
from .selectors import run_gate_open_items, run_signoff_standing

APPROVED, PENDING, REJECTED, NONE = "approved", "pending", "rejected", "none"
DECISIONS = {
    RunStatus.COMPLETED: APPROVED,
    RunStatus.IN_PROGRESS: PENDING,
    RunStatus.ABORTED: REJECTED,
    RunStatus.ROLLED_BACK: REJECTED,
}
# What `strict=1` (and POST /api/v1/gate, for callers that read only the status) answers.
STRICT_STATUS = {APPROVED: 200, PENDING: 409, REJECTED: 403, NONE: 404}
# A run with hundreds of open items answers with the first of them; the page has the rest.
OPEN_ITEMS_SHOWN = 50
FAILING = (VerificationStatus.FAILED, VerificationStatus.ERROR)


@dataclass
class ReleaseGate:
    decision: str
    run: Run | None = None
    missing_roles: list[dict] = field(default_factory=list)
    open_items: list[dict] = field(default_factory=list)
    failing_checks: list[dict] = field(default_factory=list)

    def as_json(self, base_url: str) -> dict:
        return {
            "decision": self.decision,
            "run": {"id": self.run.pk, "html_url": base_url + self.run.get_absolute_url()} if self.run else None,
            "missing_roles": self.missing_roles,
            "open_items": self.open_items,
            "failing_checks": self.failing_checks,
        }

    def summary(self) -> str:
        """One line for people: what the decision is and what still holds it."""
        if self.run is None:
            return "No deploycheck run of this version yet."
        text = {
            APPROVED: "went live",
            REJECTED: f"was {self.run.get_status_display().lower()}",
            PENDING: "is in progress",
        }[self.decision]
        parts = [f"deploycheck run #{self.run.pk} ({self.run.project.name} {self.run.version_label} → {self.run.environment.name}) {text}"]
        if self.decision == PENDING:
            if self.open_items:
                parts.append(f"{self.run.gate_open} required item(s) open or failing")
            if self.missing_roles:
                parts.append("waiting for " + ", ".join(f"{r['role']} {r['have']}/{r['need']}" for r in self.missing_roles))
        return "; ".join(parts) + "."


def run_release_gate(run: Run) -> ReleaseGate:
    """A run's gate: three bounded queries however many items it has."""
    standing = run_signoff_standing(run)
    missing = [{"role": r["role"] or "Lead", "have": r["have"], "need": r["need"]} for r in standing.missing]
    if standing.four_eyes_missing:
        # Every role has its approvals, all from the person who started the run.
        missing.append({"role": f"Four eyes (someone other than {run.started_by.get_username()})", "have": 0, "need": 1})
    open_items = run_gate_open_items(run, limit=OPEN_ITEMS_SHOWN) if run.gate_open else []
    failing = [
        {"id": i["id"], "title": i["title"], "verification": i["verification"]} for i in open_items if i["verification"] in FAILING
    ]
    return ReleaseGate(DECISIONS[run.status], run, missing, open_items, failing)


def newest_run(project: str, environment: str, version: str) -> Run | None:
    return (
        Run.objects.select_related("project", "environment")
        # A filled-in checklist imported as a past run is a record, not a launch.
        .filter(project__name=project, environment__name=environment, version_label=version, imported=False)
        .order_by("-started_at", "-id")
        .first()
    )


def release_gate_get(*, project: str, environment: str, version: str) -> ReleaseGate:
    run = newest_run(project, environment, version)
    return run_release_gate(run) if run is not None else ReleaseGate(NONE)
