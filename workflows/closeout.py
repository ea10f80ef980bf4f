"""The engagement close-out: final sign-off, then the retention balance is released.

received → awaiting_approval → accepted → (warranty) → released, or rejected / expired (the
engagement is active again). The sign-off is the milestone run's: same roles, timers, escalation
and deemed acceptance, through ``workflows.approval.Approval``.
"""

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.money import format_minor
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import activity_caller
    from workflows.approval import Approval
    from workflows.closeout_contracts import CloseoutInput, CloseoutStep, RetentionReleased
    from workflows.contracts import DEADLINE_FIELDS, Deadline, RunStatus
    from workflows.sign_off import SignOffWorkflow


@workflow.defn
class EngagementCloseout(SignOffWorkflow):
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("RunNotFound", "CloseoutCancelled"))

    @workflow.run
    async def run(self, inp: CloseoutInput) -> RunStatus:
        self._inp = inp
        status = self._status = RunStatus(
            run_id=inp.run_id,
            milestone_id=None,
            stage="received",
            kind="closeout",
            engagement_id=inp.engagement_id,
            deadlines={**dict.fromkeys(DEADLINE_FIELDS.values()), "release_at": None},
            details={
                "waived": [w.milestone_key for w in inp.waivers],
                "release_delay": inp.release_delay,
                "retention_balance_minor": None,
                "released_minor": None,
                "invoice_id": None,
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
        balance: int = await self._activity(
            "open_closeout", self._step(), int, "record close-out and its waivers"
        )
        status.details["retention_balance_minor"] = balance
        # signed off (or not): the close-out finishes what it started
        verdict = await self._sign_off(inp.policy)
        if verdict.outcome == "approved":
            await self._accept()
            await self._release()
        else:
            await self._set_stage(verdict.outcome, outcome=verdict.outcome, detail=verdict.detail)
            status.outcome, status.outcome_detail = verdict.outcome, verdict.detail
            status.pending_roles = []
            self._show()
        await approval.ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    async def _accept(self) -> None:
        assert self._status is not None
        await self._activity(
            "accept_closeout", self._step(), None, "apply waivers, close the engagement"
        )
        self._status.stage = "accepted"
        self._upsert_stage()
        if self._inp.release_delay is None:
            return
        release: Deadline = await self._activity(
            "plan_release", self._step(), Deadline, "plan the end of the warranty period"
        )
        self._status.deadlines["release_at"] = release.at
        await self._set_stage("warranty")
        # A durable timer; decisions arriving meanwhile are audited as ignored right away.
        while (remaining := datetime.fromisoformat(release.at) - workflow.now()) > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox), timeout=remaining, timeout_summary=release.label
                )
            except TimeoutError:
                break
            assert self._approval is not None
            await self._approval.ignore_inbox()

    async def _release(self) -> None:
        status = self._status
        assert status is not None
        released: RetentionReleased = await self._activity(
            "release_retention", self._step(), RetentionReleased, "release the retention balance"
        )
        status.details["released_minor"] = released.released_minor
        status.details["invoice_id"] = status.invoice_id = released.invoice_id
        status.stage = status.outcome = "released"
        self._upsert_stage()

    # ---- helpers --------------------------------------------------------------------------

    def _step(self, stage: str | None = None, **closing: str) -> CloseoutStep:
        return CloseoutStep(closeout=self._inp, at=iso(workflow.now()), stage=stage, **closing)

    async def _set_stage(self, stage: str, **closing: str) -> None:
        """Recorded first, then shown: the status never runs ahead of the database."""
        assert self._status is not None
        await self._activity(
            "set_closeout_stage", self._step(stage, **closing), None, f"stage → {stage}"
        )
        self._status.stage = stage
        self._upsert_stage()

    def _upsert_stage(self) -> None:
        assert self._status is not None
        workflow.upsert_search_attributes([sa.STAGE.value_set(self._status.stage)])
        self._show()

    def _describe(self, status: RunStatus) -> list[str]:
        inp = self._inp
        waived = ", ".join(f"`{w.milestone_key}`" for w in inp.waivers)
        paragraphs = [
            f"Close-out of {inp.engagement_name} (`{inp.engagement_id}`)"
            + (f", waiving {waived}." if waived else ".")
        ]
        paragraphs += super()._describe(status)
        balance = status.details.get("retention_balance_minor")
        if status.stage == "warranty":
            held = f" ({format_minor(balance, inp.currency)} {inp.currency})" if balance else ""
            paragraphs.append(
                f"The retention{held} is released on {status.deadlines.get('release_at')}."
            )
        return paragraphs
