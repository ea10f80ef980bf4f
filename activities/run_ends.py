"""The way out as an activity: a workflow that is cancelled or gives up records its end here."""

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.approval import at_
from domain.lifecycle import RunStage
from services.run_ends import end_run
from workflows.contracts import EndRun


class RunEndActivities:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    @activity.defn(name="end_run")
    def end_run(self, req: EndRun) -> None:
        """Idempotent: a run that has already ended (a retry) is left as it is."""
        with self._sessions.begin() as session:
            end_run(session, req.run_id, RunStage(req.stage), req.detail, at_(req.at), req.actor)
