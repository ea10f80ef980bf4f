"""Closing one month of an engagement's time and materials: one activity, one transaction.

The workflow id is ``time-period:<engagement>:<YYYY-MM>``; starting it again while it runs joins
the running close, and after it has closed a new run finds the period closed and changes nothing.
With ``approval: true`` on the T&M terms the close records a timesheet sign-off and starts its
``TimesheetSignOff`` workflow, which bills the period once it is approved.
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller
    from workflows.time_sign_off import TimesheetInput

_activity = activity_caller()
# workflow.patched: a close first asks whether the timesheet needs sign-off.
TIMESHEET_SIGN_OFF = "timesheet-sign-off"


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
    # Set when the period awaits its timesheet's sign-off instead (nothing billed yet).
    sign_off_run_id: str | None = None


@dataclass
class CloseStart:
    """What a close does first: the timesheet sign-off to start, or None to bill now."""

    sign_off: TimesheetInput | None = None


@workflow.defn
class CloseTimePeriod:
    @workflow.run
    async def run(self, inp: ClosePeriodInput) -> PeriodClosed:
        request = ClosePeriodRequest(inp.engagement_id, inp.period, inp.actor, iso(workflow.now()))
        if workflow.patched(TIMESHEET_SIGN_OFF):
            start: CloseStart = await _activity(
                "begin_time_period_close",
                request,
                CloseStart,
                f"does {inp.period}'s timesheet need sign-off before it bills?",
            )
            if start.sign_off is not None:
                return await _start_sign_off(start.sign_off)
        return await _activity(
            "close_time_period",
            request,
            PeriodClosed,
            f"bill {inp.period}'s time entries as time_and_materials lines and close it",
        )


async def _start_sign_off(sheet: TimesheetInput) -> PeriodClosed:
    """Start the sign-off (it outlives this close; one already started is joined)."""
    await _activity(
        "start_timesheet_sign_off",
        sheet,
        None,
        f"start the timesheet sign-off of {sheet.period}",
    )
    return PeriodClosed(
        engagement_id=sheet.engagement_id,
        period=sheet.period,
        invoice_id=None,
        entry_count=sheet.entry_count,
        entries_sha256=sheet.entries_sha256,
        gross_minor=sheet.gross_minor,
        capped_minor=0,
        sign_off_run_id=sheet.run_id,
    )
