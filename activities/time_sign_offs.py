"""Activities of a timesheet sign-off: its stage (approvers told when it awaits them), billing
the period once signed, and recording a rejection or expiry (the period stays open).

Each runs in one transaction and finds its earlier effect on a retry (the run has ended, the
period is closed, the audit's dedupe keys).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client

from activities.approval import at_, deadlines_for, load_run
from activities.audit import run_audit
from activities.delivery import Notifier
from activities.time_periods import close_period
from domain.lifecycle import TERMINAL_STAGES
from services import notices
from services.time_sign_offs import start_sign_off
from workflows.time_period import ClosePeriodRequest
from workflows.time_sign_off import TimesheetInput, TimesheetResult, TimesheetStep


class TimesheetStarts:
    """Starts the sign-off a close recorded. An activity rather than a child workflow: the
    sign-off outlives its close like any run the API starts, and this is the reconciler's call
    too (idempotent: a sign-off already started is joined)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client, self._task_queue = client, task_queue

    @activity.defn(name="start_timesheet_sign_off")
    async def start_timesheet_sign_off(self, sheet: TimesheetInput) -> None:
        await start_sign_off(self._client, self._task_queue, sheet)


class TimesheetActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    def all(self) -> list[Callable[..., Any]]:
        """The worker registers these (``plan_deadlines`` and decisions are ApprovalActivities')."""
        return [self.timesheet_stage, self.bill_signed_timesheet, self.close_timesheet_sign_off]

    @activity.defn(name="timesheet_stage")
    def timesheet_stage(self, req: TimesheetStep) -> None:
        sheet, stage = req.timesheet, req.stage
        assert stage is not None, "timesheet_stage is called with the stage to record"
        with self._sessions.begin() as session:
            run = load_run(session, sheet.run_id)
            if run.stage in TERMINAL_STAGES:
                return  # ended meanwhile (cancelled): a late stage change must not revive it
            run.stage = stage
            run_audit(
                session,
                sheet,
                kind="stage_changed",
                at=at_(req.at),
                data={"stage": stage, "period": sheet.period},
                dedupe_key=f"{sheet.run_id}:stage:{stage}",
            )
            queued = []
            if stage == "awaiting_approval":
                notice = notices.approval_requested(
                    sheet.subject,
                    "timesheet",
                    deadlines_for(sheet.policy, at_(req.at)),
                    amounts=[
                        (f"Time and materials, {sheet.period}", sheet.gross_minor),
                        *(
                            [("Client-caused delay", sheet.delay_minor)]
                            if sheet.delay_minor
                            else []
                        ),
                    ],
                    detail=f"Timesheet {sheet.period}: {sheet.entry_count} entries "
                    f"(sha256 {sheet.entries_sha256[:12]}…) bill once every role approves.",
                )
                queued = self._notifier.queue(
                    session, notice, notices.recipients(sheet.policy.roles)
                )
        self._notifier.started(queued)

    @activity.defn(name="bill_signed_timesheet")
    def bill_signed_timesheet(self, req: TimesheetStep) -> TimesheetResult:
        """Close the period as an unapproved close would, and end the run ``billed``."""
        sheet = req.timesheet
        with self._sessions() as session:
            run = load_run(session, sheet.run_id)
            if run.stage in TERMINAL_STAGES:  # a retry after the work committed
                result = TimesheetResult(run.stage, run.invoice_id, run.outcome_detail)
                session.rollback()
                return result
            closed, queued = close_period(
                session,
                ClosePeriodRequest(sheet.engagement_id, sheet.period, sheet.requested_by, req.at),
            )
            run.stage = run.outcome = "billed"
            run.outcome_detail = f"signed off; {closed.entry_count} entries billed"
            run.invoice_id, run.closed_at = closed.invoice_id, datetime.fromisoformat(req.at)
            run_audit(
                session,
                sheet,
                kind="time_period_signed_off",
                at=at_(req.at),
                data={
                    "period": sheet.period,
                    "entries_sha256": closed.entries_sha256,
                    "signed_entries_sha256": sheet.entries_sha256,
                    "invoice_id": closed.invoice_id,
                },
                dedupe_key=f"{sheet.run_id}:signed_off",
            )
            result = TimesheetResult("billed", closed.invoice_id, run.outcome_detail)
            session.commit()
        self._notifier.started(queued)
        return result

    @activity.defn(name="close_timesheet_sign_off")
    def close_timesheet_sign_off(self, req: TimesheetStep) -> TimesheetResult:
        """A rejected or expired timesheet: the run ends so, audited; the period stays open."""
        sheet, stage = req.timesheet, req.outcome or "rejected"
        with self._sessions.begin() as session:
            run = load_run(session, sheet.run_id)
            if run.stage in TERMINAL_STAGES:
                return TimesheetResult(run.stage, run.invoice_id, run.outcome_detail)
            run.stage = run.outcome = stage
            run.outcome_detail = req.detail or None
            run.closed_at = datetime.fromisoformat(req.at)
            run_audit(
                session,
                sheet,
                kind=f"time_period_sign_off_{stage}",
                at=at_(req.at),
                data={"period": sheet.period, "stage": stage, "detail": req.detail},
                dedupe_key=f"{sheet.run_id}:{stage}",
            )
            return TimesheetResult(stage, None, run.outcome_detail)
