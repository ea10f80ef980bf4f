"""Milestone runs that are still open, whether or not they hold their milestone's claim.

A filing of a repeatable milestone holds no claim (several may be in progress at once), so
``Milestone.open_run_id`` alone does not say whether a milestone is mid-run.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Run
from domain.lifecycle import TERMINAL_STAGES


def open_milestone_runs(session: Session, engagement_id: str) -> dict[str, str]:
    """Milestone id → the earliest of its open runs, for every milestone of the engagement."""
    rows = session.execute(
        select(Run.milestone_id, Run.id)
        .where(
            Run.engagement_id == engagement_id,
            Run.kind == "milestone",
            Run.stage.not_in(TERMINAL_STAGES),
        )
        .order_by(Run.created_at.desc())
    ).all()
    return {milestone_id: run_id for milestone_id, run_id in rows if milestone_id}
