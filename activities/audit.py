"""Audit events about a run: the run supplies engagement, milestone and run ids."""

from typing import Any, Protocol

from sqlalchemy.orm import Session

from db.audit import append_event


class AboutARun(Protocol):
    """A run's input or sign-off subject: either names the run and where it belongs."""

    @property
    def run_id(self) -> str: ...
    @property
    def engagement_id(self) -> str: ...
    @property
    def milestone_id(self) -> str | None: ...


SYSTEM_ACTOR = "tollgate"


def run_audit(
    session: Session, run: AboutARun, *, kind: str, actor: str = SYSTEM_ACTOR, **fields: Any
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
