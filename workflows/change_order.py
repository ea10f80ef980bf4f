"""A change order's sign-off: one durable workflow per proposal.

received → awaiting_approval → applied (or conflicted / rejected / expired). The same dual
sign-off as a milestone run (``workflows.approval.Approval``); once approved, one activity applies
the changes and versions the engagement in a single transaction, or records the conflict if a
touched milestone was triggered or billed since the proposal.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import activity_caller
    from workflows.approval import Approval
    from workflows.change_order_contracts import (
        ChangeOrderInput,
        ChangeOrderResult,
        ChangeOrderStep,
    )
    from workflows.contracts import RunStatus
    from workflows.sign_off import SignOffWorkflow


@workflow.defn
class ChangeOrderApproval(SignOffWorkflow):
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("RunNotFound", "ChangeOrderNotFound"))

    @workflow.run
    async def run(self, inp: ChangeOrderInput) -> RunStatus:
        self._inp = inp
        status = self._status = RunStatus(
            run_id=inp.run_id,
            milestone_id=None,
            stage="received",
            kind="change_order",
            engagement_id=inp.engagement_id,
            details={"change_order_id": inp.change_order_id, "status": "proposed", "version": None},
        )
        self._approval = Approval(
            inp.subject, status, self._inbox, self._activity, on_change=self._show
        )
        self._show()
        return await self._run_to_an_end(self._proceed())

    async def _proceed(self) -> RunStatus:
        inp, status, approval = self._inp, self._status, self._approval
        assert status is not None and approval is not None
        # decided: the order is applied or closed, not cancelled
        verdict = await self._sign_off(inp.policy)
        step = ChangeOrderStep(
            change_order=inp, at=iso(workflow.now()), outcome=verdict.outcome, detail=verdict.detail
        )
        if verdict.outcome == "approved":
            result: ChangeOrderResult = await self._activity(
                "apply_change_order",
                step,
                ChangeOrderResult,
                f"apply change order {inp.change_order_id} and version the engagement",
            )
        else:
            result = await self._activity(
                "close_change_order",
                step,
                ChangeOrderResult,
                f"close change order {inp.change_order_id}: {verdict.outcome}",
            )
        status.stage = status.outcome = result.status
        status.outcome_detail = result.detail
        status.pending_roles = []
        status.details = {**status.details, "status": result.status, "version": result.version}
        self._upsert_stage()

        await approval.ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    async def _set_stage(self, stage: str) -> None:
        assert self._status is not None
        self._status.stage = stage
        self._upsert_stage()
        await self._activity(
            "change_order_stage",
            ChangeOrderStep(change_order=self._inp, at=iso(workflow.now()), stage=stage),
            None,
            f"stage → {stage}",
        )

    def _upsert_stage(self) -> None:
        assert self._status is not None
        workflow.upsert_search_attributes([sa.STAGE.value_set(self._status.stage)])
        self._show()

    def _describe(self, status: RunStatus) -> list[str]:
        inp, changes = self._inp, self._inp.changes
        touched = [u["milestone"] for u in changes.get("update", [])]
        touched += [a["key"] for a in changes.get("add", [])] + list(changes.get("remove", []))
        keys = ", ".join(f"`{key}`" for key in touched) or "no milestones"
        if changes.get("time_and_materials") is not None:
            keys += " and the time-and-materials terms"
        paragraphs = [
            f"{inp.subject.title} (`{inp.engagement_id}`, version {inp.base_version}): {keys}."
        ]
        return paragraphs + super()._describe(status)
