"""An encounter batch's sign-off (the engagement's approval says ``"encounters": "sign_off"``):
one workflow per batch, id ``encounters:<engagement>:<batch>:sign-off``.

received → awaiting_approval → billing → billed, or rejected / expired (nothing bills). Started
when the upload is recorded (the API, or the reconciler for a run recorded but never started);
the same dual sign-off as a milestone run (``workflows.approval.Approval``). Once approved the
batch's encounters are released and billed in chunks exactly as ``BillEncounters`` bills them.
"""

from dataclasses import dataclass, field

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
    from workflows.encounters import CHUNK_SIZE, BilledBatch, bill_in_chunks
    from workflows.sign_off import SignOffWorkflow


@dataclass
class EncountersInput:
    """A batch as sent for sign-off (also its runs row's snapshot)."""

    run_id: str  # encounters:<engagement>:<batch>:sign-off
    engagement_id: str
    customer_id: str
    engagement_name: str
    batch_id: str
    payer_id: str
    currency: str
    policy: ApprovalPolicy
    count: int
    total_minor: int
    encounter_ids_sha256: str
    requested_by: str
    chunk_size: int = CHUNK_SIZE

    @property
    def milestone_id(self) -> str | None:
        return None  # a batch is about the engagement's encounters

    @property
    def subject(self) -> Subject:
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Encounter batch {self.batch_id} of {self.engagement_name}",
            policy=self.policy,
        )


@dataclass
class EncountersStep:
    """A sign-off activity's argument: the request, when, and the stage or the verdict."""

    batch: EncountersInput
    at: str
    stage: str | None = None
    outcome: str | None = None  # approved | rejected | expired
    detail: str = ""


@dataclass
class EncountersResult:
    stage: str  # billed | rejected | expired
    detail: str | None = None
    invoice_ids: list[str] = field(default_factory=list)


def search_attributes(inp: EncountersInput) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ENGAGEMENT_ID, inp.engagement_id),
            SearchAttributePair(sa.CUSTOMER_ID, inp.customer_id),
            SearchAttributePair(sa.MILESTONE_KEY, f"encounters {inp.batch_id}"),
            SearchAttributePair(sa.STAGE, "received"),
        ]
    )


@workflow.defn
class EncounterSignOff(SignOffWorkflow):
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("RunNotFound"))

    @workflow.run
    async def run(self, inp: EncountersInput) -> RunStatus:
        self._inp = inp
        status = self._status = RunStatus(
            run_id=inp.run_id,
            milestone_id=None,
            stage="received",
            kind="encounters",
            engagement_id=inp.engagement_id,
            details={
                "batch_id": inp.batch_id,
                "payer_id": inp.payer_id,
                "count": inp.count,
                "total_minor": inp.total_minor,
                "currency": inp.currency,
                "encounter_ids_sha256": inp.encounter_ids_sha256,
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
        # decided: the batch bills or is marked, not cancelled
        verdict = await self._sign_off(inp.policy)
        if verdict.outcome == "approved":
            await self._set_stage("billing")  # releases the encounters for billing
            billed: BilledBatch = await bill_in_chunks(inp.batch_id, inp.chunk_size)
            status.details.update(billed=billed.posted, billed_minor=billed.posted_minor)
        step = EncountersStep(
            inp, iso(workflow.now()), outcome=verdict.outcome, detail=verdict.detail
        )
        result: EncountersResult = await self._activity(
            "end_encounter_sign_off",
            step,
            EncountersResult,
            f"record the batch {'billed' if verdict.outcome == 'approved' else verdict.outcome}",
        )
        status.stage = status.outcome = result.stage
        status.outcome_detail = result.detail
        status.invoice_id = result.invoice_ids[0] if result.invoice_ids else None
        status.details["invoice_ids"] = result.invoice_ids
        status.pending_roles = []
        self._upsert_stage()

        await approval.ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    async def _set_stage(self, stage: str) -> None:
        assert self._status is not None
        await self._activity(
            "encounter_sign_off_stage",
            EncountersStep(self._inp, iso(workflow.now()), stage=stage),
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
        amount = format_minor(inp.total_minor, inp.currency)
        paragraphs = [
            f"Encounter batch `{inp.batch_id}` of {inp.engagement_name} (`{inp.engagement_id}`): "
            f"{inp.count} encounters, {amount} {inp.currency}, payer `{inp.payer_id}`."
        ]
        return paragraphs + super()._describe(status)
