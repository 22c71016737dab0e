"""The go-live gate and the stale-approval rule, written once.

Pure functions over plain values: the kernel keeps per-item flags and per-run counts with them,
the README's gate table is the data of their parametrized test, and nothing else decides.

What holds the gate: a required item that is not `done` or `skipped` with a reason; a `done`
required item whose latest verdict is `failed`, `error`, `queued` or `running`. A skipped
item's check never holds it. Optional and after-go-live items are not required.

What stales approvals: a state change of a required item, or its latest *finished* verdict
entering or leaving {failed, error} while it is not skipped. Moving between failed and error
does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .choices import Decision, ItemState, VerificationStatus

UNSETTLED = (VerificationStatus.FAILED, VerificationStatus.ERROR, VerificationStatus.QUEUED, VerificationStatus.RUNNING)
FAILING = (VerificationStatus.FAILED, VerificationStatus.ERROR)


def is_failing(finished_verdict: str | None) -> bool:
    return finished_verdict in FAILING


def item_gate_problem(*, required: bool, state: str, verdict: str | None, reason: str) -> str | None:
    """Why this item holds go-live back, or None. `verdict` is the latest result's status.

    People cannot skip without a reason; a `[-]` in a checklist imported as a past run can.
    """
    if not required:
        return None
    if state == ItemState.SKIPPED:
        return None if reason else "skipped without a reason"
    if state != ItemState.DONE:
        return state
    if verdict in (VerificationStatus.QUEUED, VerificationStatus.RUNNING):
        return "verification in progress"
    if verdict in FAILING:
        return f"verification {verdict}"
    return None


def holds_gate(*, required: bool, state: str, verdict: str | None, reason: str) -> bool:
    return item_gate_problem(required=required, state=state, verdict=verdict, reason=reason) is not None


def stales_approvals(*, required: bool, state_before: str, state_after: str, failing_before: bool, failing_after: bool) -> bool:
    """Whether a change to one item voids the approvals given before it. A skipped item's
    check no longer counts, so its verdict moving stales nothing."""
    if not required:
        return False
    if state_before != state_after:
        return True
    return failing_before != failing_after and state_after != ItemState.SKIPPED


# --- Sign-off policy ------------------------------------------------------------------------


@dataclass
class SignoffStanding:
    """Where a run's sign-off stands: what each role has, what it needs, what is missing."""

    roles: list[dict] = field(default_factory=list)  # [{role, have, need, rejected}]
    four_eyes_missing: bool = False
    four_eyes_met: bool = False
    rejected: bool = False

    @property
    def missing(self) -> list[dict]:
        return [r for r in self.roles if r["have"] < r["need"] or r["rejected"]]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.four_eyes_missing and not self.rejected


def signoff_standing(
    *,
    required_roles: list[str],
    role_counts: dict[str, int],
    four_eyes: bool,
    starter_id: int | None,
    decisions: list[tuple[str, int, str]],
) -> SignoffStanding:
    """From current (not stale) decisions, oldest first, as (role, user id, decision).

    A role counts the different people whose latest decision for it is an approval; the role
    is rejected while its newest decision is a rejection. Four eyes: somebody other than the
    person who started the run must be among the approvers.
    """
    latest_by_person: dict[tuple[str, int], str] = {}
    newest: dict[str, str] = {}
    for role, user_id, decision in decisions:
        latest_by_person[(role, user_id)] = decision
        newest[role] = decision
    standing = SignoffStanding()
    approvers: set[int] = set()
    for role in required_roles or [""]:
        people = {user for (r, user), d in latest_by_person.items() if r == role and d == Decision.APPROVE}
        approvers |= people
        rejected = newest.get(role) == Decision.REJECT
        standing.roles.append({"role": role, "have": len(people), "need": max(1, int(role_counts.get(role, 1))), "rejected": rejected})
        standing.rejected = standing.rejected or rejected
    if four_eyes and approvers:
        standing.four_eyes_met = bool(approvers - {starter_id})
        standing.four_eyes_missing = not standing.four_eyes_met
    return standing
