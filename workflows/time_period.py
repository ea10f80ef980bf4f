"""Closing one month of an engagement's time and materials: one activity, one transaction.

The workflow id is ``time-period:<engagement>:<YYYY-MM>``; starting it again while it runs joins
the running close, and after it has closed a new run finds the period closed and changes nothing.
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller

_activity = activity_caller()


@dataclass
class ClosePeriodInput:
    engagement_id: str
    period: str  # YYYY-MM
    actor: str


@dataclass
class ClosePeriodRequest:
    """The activity's input: the workflow's plus the instant that dates the close."""

    engagement_id: str
    period: str
    actor: str
    at: str


@dataclass
class PeriodClosed:
    engagement_id: str
    period: str
    invoice_id: str | None
    entry_count: int
    entries_sha256: str
    gross_minor: int
    capped_minor: int
    already_closed: bool = False


@workflow.defn
class CloseTimePeriod:
    @workflow.run
    async def run(self, inp: ClosePeriodInput) -> PeriodClosed:
        request = ClosePeriodRequest(inp.engagement_id, inp.period, inp.actor, iso(workflow.now()))
        return await _activity(
            "close_time_period",
            request,
            PeriodClosed,
            f"bill {inp.period}'s time entries as time_and_materials lines and close it",
        )
