"""Sign-off: approvals and rejections by role, the gate they pass, and going live."""

from __future__ import annotations

from .. import permissions
from ..choices import Action, Decision, RunStatus
from ..errors import RuleError
from ..models import Run, Signoff
from ..selectors import run_gate_open_items, run_signoff_standing
from .kernel import run_change


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


def signoff_record(*, run: Run, actor, decision: str, role: str | None = None, comment: str = "", override_reason: str = "") -> Signoff:
    comment, override_reason = (comment or "").strip(), (override_reason or "").strip()
    if decision not in Decision.values:
        raise RuleError("`decision` is approve or reject.")
    with run_change(run.pk, actor=actor) as change:
        run = change.run
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
        open_items: list[dict] = []
        if decision == Decision.APPROVE and not run.gate_met:
            open_items = run_gate_open_items(run)
            if not override_reason:
                raise RuleError(
                    f"{len(open_items)} required item(s) are not done or have unsettled verifications.",
                    status=409,
                    detail=open_items,
                )
            if not permissions.can_lead(actor):
                raise RuleError("Only a lead can override the gate.", status=403)
        else:
            override_reason = ""
        mine = run.signoffs.filter(role=role, user=actor, stale_at__isnull=True).order_by("-at", "-id").values_list("decision", flat=True).first()
        if decision == Decision.APPROVE and mine == Decision.APPROVE:
            raise RuleError(
                f"You have already approved as {role or 'lead'}: another person's approval is needed." if run.role_counts.get(role, 1) > 1
                else f"You have already approved as {role or 'lead'}.",
                status=409,
            )
        signoff = change.add_signoff(role=role, decision=decision, user=actor, comment=comment, override_reason=override_reason)
        action = Action.SIGNOFF_APPROVE if decision == Decision.APPROVE else Action.SIGNOFF_REJECT
        change.record(action, after={"role": role, "decision": decision, "comment": comment})
        if override_reason:
            change.record(Action.SIGNOFF_OVERRIDE, after={"role": role, "override_reason": override_reason, "open": open_items})
        if decision == Decision.APPROVE and run_signoff_standing(run).complete:
            change.update_run(status=RunStatus.COMPLETED, completed_at=change.now)
            change.record(Action.RUN_LIVE, before={"status": RunStatus.IN_PROGRESS}, after={"status": RunStatus.COMPLETED, "at": change.now.isoformat()})
    return signoff
