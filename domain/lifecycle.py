"""The milestone lifecycle and the run stages: one state machine instead of strings in many files.

A milestone is claimed by one open run at a time. The run's end decides where the milestone goes:
billed runs accept it (fully or partly); runs that end any other way hand it back, keeping what
earlier runs accepted.
"""

from decimal import Decimal
from enum import StrEnum


class MilestoneStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    PARTIALLY_ACCEPTED = "partially_accepted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    INELIGIBLE = "ineligible"
    WAIVED = "waived"
    REMOVED = "removed"


class RunStage(StrEnum):
    RECEIVED = "received"
    AWAITING_APPROVAL = "awaiting_approval"
    WAITING_ON_DEPENDENCY = "waiting_on_dependency"
    BILLING = "billing"
    BILLED = "billed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    INELIGIBLE = "ineligible"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Every stage a run (milestone run, close-out or change order) can end in; it then holds nothing.
TERMINAL_STAGES = (
    "billed",
    "rejected",
    "expired",
    "ineligible",
    "cancelled",
    "released",
    "applied",
    "conflicted",
    "failed",
)

# Ways a run can end without billing: the milestone is handed back.
UNBILLED_ENDS = frozenset(
    {RunStage.REJECTED, RunStage.EXPIRED, RunStage.INELIGIBLE, RunStage.CANCELLED, RunStage.FAILED}
)

TRANSITIONS: dict[MilestoneStatus, frozenset[MilestoneStatus]] = {
    MilestoneStatus.PENDING: frozenset(
        {MilestoneStatus.IN_REVIEW, MilestoneStatus.WAIVED, MilestoneStatus.REMOVED}
    ),
    MilestoneStatus.REJECTED: frozenset(
        {MilestoneStatus.IN_REVIEW, MilestoneStatus.WAIVED, MilestoneStatus.REMOVED}
    ),
    MilestoneStatus.INELIGIBLE: frozenset(
        {MilestoneStatus.IN_REVIEW, MilestoneStatus.WAIVED, MilestoneStatus.REMOVED}
    ),
    MilestoneStatus.IN_REVIEW: frozenset(
        {
            MilestoneStatus.ACCEPTED,
            MilestoneStatus.PARTIALLY_ACCEPTED,
            MilestoneStatus.PENDING,
            MilestoneStatus.REJECTED,
            MilestoneStatus.INELIGIBLE,
        }
    ),
    MilestoneStatus.PARTIALLY_ACCEPTED: frozenset(
        {MilestoneStatus.IN_REVIEW, MilestoneStatus.WAIVED}
    ),
    MilestoneStatus.ACCEPTED: frozenset(),
    MilestoneStatus.WAIVED: frozenset(),
    MilestoneStatus.REMOVED: frozenset(),
}

# Statuses a trigger may claim a milestone from.
CLAIMABLE = frozenset(
    s for s, targets in TRANSITIONS.items() if MilestoneStatus.IN_REVIEW in targets
)


class IllegalTransition(ValueError):
    """A status change the milestone lifecycle does not allow (a bug or tampered data)."""


def transition(current: str, target: MilestoneStatus) -> MilestoneStatus:
    """The milestone's next status, or IllegalTransition when the lifecycle does not allow it."""
    if target == current:
        return target
    if target not in TRANSITIONS[MilestoneStatus(current)]:
        raise IllegalTransition(f"a milestone cannot go from {current} to {target}")
    return target


def status_after_billing(percent: Decimal) -> MilestoneStatus:
    return MilestoneStatus.ACCEPTED if percent == 100 else MilestoneStatus.PARTIALLY_ACCEPTED


def status_after_unbilled_end(accepted_percent: Decimal, stage: str) -> MilestoneStatus:
    """Where a milestone goes when its run ends without billing: earlier partial acceptance
    stands; a rejection or ineligibility is shown; a cancelled, failed or expired run leaves the
    milestone as if never triggered."""
    if accepted_percent > 0:
        return MilestoneStatus.PARTIALLY_ACCEPTED
    if stage in (RunStage.REJECTED, RunStage.INELIGIBLE):
        return MilestoneStatus(stage)
    return MilestoneStatus.PENDING
