"""The reconciler on a Temporal Schedule: one pass per tick (see ``services/reconcile.py``)."""

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RECONCILE_SCHEDULE_ID = "tollgate-reconcile"


@dataclass
class ReconcileResult:
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    unstartable: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


@workflow.defn
class Reconcile:
    @workflow.run
    async def run(self) -> ReconcileResult:
        return await workflow.execute_activity(
            "reconcile",
            result_type=ReconcileResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="start unstarted runs, end runs whose workflow is gone, release claims",
        )
