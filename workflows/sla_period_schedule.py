"""The Temporal Schedule that judges every SLA period whose report grace has passed.

It ticks hourly; each tick asks which SLA milestones have periods ended, past their
``report_grace_days`` in the engagement calendar's time zone and not yet judged, and judges each
with a ``JudgeSlaPeriod`` child, ids as the API's, so a period an admin is judging by hand is
joined, not judged twice. A period left ``pending`` (a run still open) is asked for again next tick.
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
    from workflows.sla_period import JudgeInput, JudgeSlaPeriod, judge_id

SLA_PERIODS_SCHEDULE_ID = "tollgate-judge-sla-periods"
_activity = activity_caller()
# Children started and awaited together; the rest wait for the next group.
_GROUP = 50


@dataclass
class JudgeDueInput:
    # Periods judged per pass at most; a backlog is worked off over the next passes.
    limit: int = 1000


@dataclass
class SlaDueRequest:
    at: str
    limit: int


@dataclass
class JudgeDueResult:
    judged: list[str] = field(default_factory=list)  # the periods' workflow ids


@workflow.defn
class JudgeDueSlaPeriods:
    @workflow.run
    async def run(self, inp: JudgeDueInput) -> JudgeDueResult:
        due: list[JudgeInput] = await _activity(
            "sla_periods_due",
            SlaDueRequest(iso(workflow.now()), inp.limit),
            list[JudgeInput],
            "find SLA periods past their report grace and not yet judged",
        )
        result = JudgeDueResult()
        for start in range(0, len(due), _GROUP):
            children = []
            for period in due[start : start + _GROUP]:
                child_id = judge_id(period.milestone_id, period.period)
                try:
                    children.append(
                        await workflow.start_child_workflow(
                            JudgeSlaPeriod.run,
                            period,
                            id=child_id,
                            parent_close_policy=ParentClosePolicy.ABANDON,
                            static_summary=f"judge {period.period} of {period.milestone_id}",
                        )
                    )
                except WorkflowAlreadyStartedError:  # an admin's judgement is running: it will do
                    continue
                result.judged.append(child_id)
            await asyncio.gather(*children)
        return result


def sla_periods_schedule(task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            JudgeDueSlaPeriods.run,
            JudgeDueInput(),
            id="judge-sla-periods",  # Temporal appends the scheduled time
            task_queue=task_queue,
            static_summary="Judge every SLA period past its report grace",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_sla_periods_schedule(
    client: Client,
    task_queue: str,
    every_seconds: int = 3600,
    schedule_id: str = SLA_PERIODS_SCHEDULE_ID,
) -> None:
    """Create or update the Schedule; ``every_seconds`` 0 deletes it (judging by hand only)."""
    schedule = None
    if every_seconds > 0:
        schedule = sla_periods_schedule(task_queue, timedelta(seconds=every_seconds))
    await put_schedule(client, schedule_id, schedule)
