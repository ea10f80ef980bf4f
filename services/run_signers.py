"""Who may sign each run, kept as rows beside it: an approver's waiting runs are then found by
index, however many runs other people are waiting on."""

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Run, RunSigner
from domain.lifecycle import RunStage
from workflows.contracts import ApprovalPolicy


class Capacity(StrEnum):
    APPROVER = "approver"  # holds the role
    ESCALATION = "escalation"  # is told, and may decide, once the role is escalated


def signers(run_id: str, policy: ApprovalPolicy) -> list[RunSigner]:
    """A row for each (principal, role, capacity) the frozen policy names; add them with the run."""
    named = {
        (principal_id, role, capacity)
        for capacity, grants in (
            (Capacity.APPROVER, policy.roles),
            (Capacity.ESCALATION, policy.escalation),
        )
        for role, principal_ids in grants.items()
        for principal_id in principal_ids
    }
    return [
        RunSigner(run_id=run_id, principal_id=principal_id, role=role, capacity=capacity)
        for principal_id, role, capacity in sorted(named)
    ]


def awaiting(session: Session, principal_id: str) -> list[Run]:
    """Runs awaiting approval whose policy names the principal in any capacity, oldest first."""
    named = select(RunSigner.run_id).where(RunSigner.principal_id == principal_id)
    return list(
        session.scalars(
            select(Run)
            .where(Run.stage == RunStage.AWAITING_APPROVAL, Run.id.in_(named))
            .order_by(Run.created_at, Run.id)
        )
    )
