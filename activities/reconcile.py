"""The reconciler's pass as an activity: it needs both the database and the Temporal client."""

from dataclasses import asdict, fields
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client

from services.reconcile import reconcile
from services.runs import STARTERS
from workflows.reconcile import ReconcileInput, ReconcileResult


class ReconcileActivities:
    def __init__(self, sessions: sessionmaker[Session], client: Client, task_queue: str) -> None:
        self._sessions, self._client, self._task_queue = sessions, client, task_queue

    @activity.defn(name="reconcile")
    async def reconcile(self, inp: ReconcileInput) -> ReconcileResult:
        grace = timedelta(seconds=inp.grace_seconds)
        report = await reconcile(
            self._sessions, self._client, self._task_queue, STARTERS, grace=grace
        )
        for line in report.lines():
            activity.logger.info(line)
        # The workflow's result keeps its recorded shape; batches started are in the log above.
        kept = {f.name for f in fields(ReconcileResult)}
        return ReconcileResult(**{k: v for k, v in asdict(report).items() if k in kept})
