"""The reconciler on a Temporal Schedule: one pass per tick (see ``services/reconcile.py``)."""

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import RetryPolicy

from workflows.schedules import put_schedule

RECONCILE_SCHEDULE_ID = "tollgate-reconcile"


@dataclass
class ReconcileInput:
    # Runs recorded less than this long ago are left to their own start.
    grace_seconds: int = 120


@dataclass
class ReconcileResult:
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    unstartable: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


@workflow.defn
class Reconcile:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileResult:
        return await workflow.execute_activity(
            "reconcile",
            inp,
            result_type=ReconcileResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="start unstarted runs, end runs whose workflow is gone, release claims",
        )


def reconcile_schedule(task_queue: str, every: timedelta, grace: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            Reconcile.run,
            ReconcileInput(grace_seconds=int(grace.total_seconds())),
            id="reconcile",  # Temporal appends the scheduled time
            task_queue=task_queue,
            static_summary="Start unstarted runs, end runs whose workflow is gone, release claims",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A pass still running when the next is due would find the same work: skip it.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconcile_schedule(
    client: Client, task_queue: str, every_seconds: int, grace_seconds: int = 120
) -> None:
    """Create or update the reconciler's Schedule; ``every_seconds`` 0 deletes it."""
    schedule = None
    if every_seconds > 0:
        every, grace = timedelta(seconds=every_seconds), timedelta(seconds=grace_seconds)
        schedule = reconcile_schedule(task_queue, every, grace)
    await put_schedule(client, RECONCILE_SCHEDULE_ID, schedule)
