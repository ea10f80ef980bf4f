"""Audit events about a run: the run supplies engagement, milestone and run ids."""

from typing import Any

from sqlalchemy.orm import Session

from db.audit import append_event
from workflows.contracts import RunInput

SYSTEM_ACTOR = "tollgate"


def run_audit(
    session: Session, run: RunInput, *, kind: str, actor: str = SYSTEM_ACTOR, **fields: Any
) -> None:
    append_event(
        session,
        engagement_id=run.engagement_id,
        milestone_id=run.milestone_id,
        run_id=run.run_id,
        actor=actor,
        kind=kind,
        **fields,
    )
