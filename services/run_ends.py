"""How a run ends when it does not end on its own path: cancelled or failed.

One function for every kind of run, called by the workflows' way out (an activity) and by the
reconciler (for runs whose workflow was terminated, timed out or never started), so a run's end
releases what it held — the milestone's claim, the engagement's closing state, the pending change
order — in the same transaction that records it, and a failure reaches the operators' outbox.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import ChangeOrder, Engagement, Milestone, Run
from domain.lifecycle import (
    TERMINAL_STAGES,
    RunStage,
    status_after_unbilled_end,
    transition,
)
from services.encounter_sign_offs import mark_not_signed
from services.notices import Notice, NoticeKind, queue


def end_run(
    session: Session, run_id: str, stage: RunStage, detail: str, at: datetime, actor: str
) -> bool:
    """Record that the run ended as ``stage`` and release its claims; False when it had already
    ended (nothing changes then: a retried activity, or a reconciler racing the workflow)."""
    assert stage in (RunStage.CANCELLED, RunStage.FAILED)
    run = session.scalars(
        select(Run)
        .where(Run.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if run.stage in TERMINAL_STAGES:
        return False
    held = _release(session, run, stage, detail, at)
    if run.confirmation_held is not None:  # not a verdict on the filing: it may be sent again
        held["confirmation_id"], run.confirmation_held = run.confirmation_held, None
    run.stage, run.outcome, run.outcome_detail = stage, stage, detail
    run.closed_at = run.closed_at or at
    append_event(
        session,
        engagement_id=run.engagement_id,
        milestone_id=run.milestone_id,
        run_id=run.id,
        actor=actor,
        kind="run_closed",
        at=at,
        data={"stage": str(stage), "outcome": str(stage), "detail": detail, "released": held},
        dedupe_key=f"{run.id}:stage:{stage}",
    )
    if stage == RunStage.FAILED:
        _announce_failure(session, run, detail)
    return True


def _announce_failure(session: Session, run: Run, detail: str) -> None:
    """Operators (and subscribed webhooks) hear of it; the sweep starts the delivery."""
    notice = Notice(
        kind=NoticeKind.RUN_FAILED,
        run_id=run.id,
        run_kind=run.kind,
        engagement_id=run.engagement_id,
        milestone_id=run.milestone_id,
        headline=f"Run failed: {run.id}",
        detail=detail,
    )
    queue(session, notice, [], operators=True)


def _release(
    session: Session, run: Run, stage: RunStage, detail: str, at: datetime
) -> dict[str, Any]:
    """Hand back what the run claimed; returns what was released, for the audit event."""
    if run.kind == "milestone":
        assert run.milestone_id is not None
        milestone = session.scalars(
            select(Milestone)
            .where(Milestone.id == run.milestone_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if milestone.open_run_id != run.id:
            return {}
        milestone.open_run_id = None
        milestone.status = transition(
            milestone.status,
            status_after_unbilled_end(Decimal(milestone.accepted_percent), str(stage)),
        )
        return {"milestone_id": milestone.id, "milestone_status": milestone.status}
    if run.kind == "encounters":  # nothing bills: the batch's encounters are marked so
        batch_id = run.snapshot["batch_id"]
        return {
            "batch_id": batch_id,
            "encounters_marked": mark_not_signed(session, batch_id, stage),
        }
    if run.kind == "closeout":
        reopened = session.execute(
            update(Engagement)
            .where(Engagement.id == run.engagement_id, Engagement.status == "closing")
            .values(status="active")
        ).rowcount
        return {"engagement_status": "active"} if reopened else {}
    order = session.scalar(select(ChangeOrder).where(ChangeOrder.run_id == run.id))
    if order is None or order.status != "proposed":
        return {}
    order.status, order.detail, order.decided_at = str(stage), detail, at
    return {"change_order_id": order.id, "change_order_status": order.status}
