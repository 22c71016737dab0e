from django.db import models


class ItemState(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    BLOCKED = "blocked", "Blocked"
    SKIPPED = "skipped", "Skipped"

    @classmethod
    def needs_reason(cls, state: str) -> bool:
        return state in (cls.BLOCKED, cls.SKIPPED)


# The seeds' own status key: the marker a filled-in checklist uses for each state.
MARKER_TO_STATE = {
    " ": ItemState.TODO,
    "x": ItemState.DONE,
    "~": ItemState.IN_PROGRESS,
    "!": ItemState.BLOCKED,
    "-": ItemState.SKIPPED,
}
STATE_TO_MARKER = {state: marker for marker, state in MARKER_TO_STATE.items()}


class RunStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Live"
    ABORTED = "aborted", "Aborted"
    ROLLED_BACK = "rolled_back", "Rolled back"


class VerificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.PASSED, cls.FAILED, cls.ERROR)


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class AccessRole(models.TextChoices):
    """The permission groups `manage.py grant` hands out."""

    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    LEAD = "lead", "Lead"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


class Action(models.TextChoices):
    """Audit event actions, as CONTRACT.md names them."""

    RUN_START = "run.start", "started the run"
    ITEM_STATE = "item.state", "changed"
    ITEM_ASSIGN = "item.assign", "assigned"
    NOTE_ADD = "note.add", "added a note"
    VERIFICATION_RESULT = "verification.result", "verified"
    SIGNOFF_APPROVE = "signoff.approve", "approved"
    SIGNOFF_REJECT = "signoff.reject", "rejected"
    SIGNOFF_STALE = "signoff.stale", "made an approval stale"
    SIGNOFF_OVERRIDE = "signoff.override", "overrode the gate"
    RUN_LIVE = "run.live", "took the run live"
    RUN_STATUS = "run.status", "changed the run status"
