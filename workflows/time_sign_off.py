"""A month's timesheet sign-off (T&M terms with ``approval: true``): one workflow per request.

received → awaiting_approval → billed, or rejected / expired (the period stays open). Started by
the period's close (``CloseTimePeriod``) once it has recorded the run; the same dual sign-off as
a milestone run (``workflows.approval.Approval``). Once approved, one activity bills the period
exactly as an unapproved close would; while the run is open the period takes no entries, so the
timesheet billed is the one signed.
"""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from domain.money import format_minor
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import activity_caller
    from workflows.approval import Approval
    from workflows.contracts import (
        ApprovalPolicy,
        RunStatus,
        Subject,
    )
    from workflows.sign_off import SignOffWorkflow


@dataclass
class TimesheetInput:
    """A period's timesheet as sent for sign-off (also its runs row's snapshot)."""

    run_id: str  # timesheet:<engagement>:<YYYY-MM>:<n>
    engagement_id: str
    customer_id: str
    engagement_name: str
    period: str
    currency: str
    policy: ApprovalPolicy
    entry_count: int
    entries_sha256: str
    gross_minor: int  # what closing bills now (work under the caps, true-up)
    delay_minor: int
    requested_by: str

    @property
    def milestone_id(self) -> str | None:
        return None  # a timesheet is about the engagement's time

    @property
    def subject(self) -> Subject:
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Timesheet {self.period} of {self.engagement_name}",
            policy=self.policy,
        )


@dataclass
class TimesheetStep:
    """A timesheet activity's argument: the request, when, and the stage or the verdict."""

    timesheet: TimesheetInput
    at: str
    stage: str | None = None
    outcome: str | None = None  # approved | rejected | expired
    detail: str = ""


@dataclass
class TimesheetResult:
    stage: str  # billed | rejected | expired
    invoice_id: str | None = None
    detail: str | None = None


def search_attributes(inp: TimesheetInput) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ENGAGEMENT_ID, inp.engagement_id),
            SearchAttributePair(sa.CUSTOMER_ID, inp.customer_id),
            SearchAttributePair(sa.MILESTONE_KEY, f"timesheet {inp.period}"),
            SearchAttributePair(sa.STAGE, "received"),
        ]
    )


@workflow.defn
class TimesheetSignOff(SignOffWorkflow):
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("RunNotFound"))

    @workflow.run
    async def run(self, inp: TimesheetInput) -> RunStatus:
        self._inp = inp
        status = self._status = RunStatus(
            run_id=inp.run_id,
            milestone_id=None,
            stage="received",
            kind="timesheet",
            engagement_id=inp.engagement_id,
            details={
                "period": inp.period,
                "entry_count": inp.entry_count,
                "entries_sha256": inp.entries_sha256,
                "gross_minor": inp.gross_minor,
                "delay_minor": inp.delay_minor,
            },
        )
        self._approval = Approval(
            inp.subject, status, self._inbox, self._activity, on_change=self._show
        )
        self._show()
        return await self._run_to_an_end(self._proceed())

    async def _proceed(self) -> RunStatus:
        inp, status, approval = self._inp, self._status, self._approval
        assert status is not None and approval is not None
        # decided: the period is billed or reopened, not cancelled
        verdict = await self._sign_off(inp.policy)
        step = TimesheetStep(
            inp, iso(workflow.now()), outcome=verdict.outcome, detail=verdict.detail
        )
        if verdict.outcome == "approved":
            result: TimesheetResult = await self._activity(
                "bill_signed_timesheet",
                step,
                TimesheetResult,
                f"bill {inp.period}'s signed timesheet and close the period",
            )
        else:
            result = await self._activity(
                "close_timesheet_sign_off",
                step,
                TimesheetResult,
                f"record the timesheet {verdict.outcome}; {inp.period} stays open",
            )
        status.stage = status.outcome = result.stage
        status.outcome_detail = result.detail
        status.invoice_id = result.invoice_id
        status.pending_roles = []
        self._upsert_stage()

        await approval.ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    async def _set_stage(self, stage: str) -> None:
        assert self._status is not None
        await self._activity(
            "timesheet_stage",
            TimesheetStep(self._inp, iso(workflow.now()), stage=stage),
            None,
            f"stage → {stage}",
        )
        self._status.stage = stage
        self._upsert_stage()

    def _upsert_stage(self) -> None:
        assert self._status is not None
        workflow.upsert_search_attributes([sa.STAGE.value_set(self._status.stage)])
        self._show()

    def _describe(self, status: RunStatus) -> list[str]:
        inp = self._inp
        amount = format_minor(inp.gross_minor + inp.delay_minor, inp.currency)
        paragraphs = [
            f"Timesheet {inp.period} of {inp.engagement_name} (`{inp.engagement_id}`): "
            f"{inp.entry_count} entries, {amount} {inp.currency} before retention."
        ]
        return paragraphs + super()._describe(status)
