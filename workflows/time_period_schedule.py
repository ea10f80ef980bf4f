"""The Temporal Schedule that closes last month's time for every T&M engagement.

It ticks hourly; each tick asks which engagements have reached, in their own calendar's time
zone, ``grace_days`` days into a new month with last month still open (timesheets arrive late),
and closes each of those months with a ``CloseTimePeriod`` child, ids as the API's, so a month
an admin is closing by hand is joined, not closed twice.
"""

import asyncio
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
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller
    from workflows.schedules import put_schedule
    from workflows.time_period import ClosePeriodInput, CloseTimePeriod

TIME_PERIODS_SCHEDULE_ID = "tollgate-close-time-periods"
_activity = activity_caller()
# Children started and awaited together; the rest wait for the next group.
_GROUP = 50


@dataclass
class CloseDueInput:
    grace_days: int = 2


@dataclass
class DueRequest:
    at: str
    grace_days: int


@dataclass
class CloseDueResult:
    closed: list[str] = field(default_factory=list)  # the periods' workflow ids


@workflow.defn
class CloseDueTimePeriods:
    @workflow.run
    async def run(self, inp: CloseDueInput) -> CloseDueResult:
        due: list[ClosePeriodInput] = await _activity(
            "time_periods_due",
            DueRequest(iso(workflow.now()), inp.grace_days),
            list[ClosePeriodInput],
            f"find last months still open {inp.grace_days} days into the new month",
        )
        result = CloseDueResult()
        for start in range(0, len(due), _GROUP):
            children = []
            for period in due[start : start + _GROUP]:
                child_id = f"time-period:{period.engagement_id}:{period.period}"
                try:
                    children.append(
                        await workflow.start_child_workflow(
                            CloseTimePeriod.run,
                            period,
                            id=child_id,
                            parent_close_policy=ParentClosePolicy.ABANDON,
                            static_summary=f"close {period.period} of {period.engagement_id}",
                        )
                    )
                except WorkflowAlreadyStartedError:  # an admin's close is running: it will do
                    continue
                result.closed.append(child_id)
            await asyncio.gather(*children)
        return result


def time_periods_schedule(task_queue: str, every: timedelta, grace_days: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CloseDueTimePeriods.run,
            CloseDueInput(grace_days=grace_days),
            id="close-time-periods",  # Temporal appends the scheduled time
            task_queue=task_queue,
            static_summary="Close last month's time for every T&M engagement",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_time_periods_schedule(
    client: Client,
    task_queue: str,
    every_seconds: int = 3600,
    grace_days: int = 2,
    schedule_id: str = TIME_PERIODS_SCHEDULE_ID,
) -> None:
    """Create or update the Schedule; ``every_seconds`` 0 deletes it (closing by hand only)."""
    schedule = None
    if every_seconds > 0:
        schedule = time_periods_schedule(task_queue, timedelta(seconds=every_seconds), grace_days)
    await put_schedule(client, schedule_id, schedule)
