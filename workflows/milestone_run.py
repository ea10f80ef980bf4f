"""The milestone run: one durable workflow per trigger.

received → awaiting_approval → waiting_on_dependency → billing → billed
(or rejected / expired / ineligible; cancelled or failed through the way out of
``workflows/sign_off.py``). Decisions only: every side effect is an activity.
"""

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import activity_caller
    from workflows.approval import Approval
    from workflows.clawback_watch import watch_id_for
    from workflows.contracts import (
        DEADLINE_FIELDS,
        TERMINAL_STAGES,
        BillingResult,
        CheckDependencies,
        Deadline,
        DecisionView,
        DependencyCheck,
        OpenRun,
        PostBilling,
        RunInput,
        RunOpened,
        RunStatus,
        SetStage,
    )
    from workflows.sign_off import SignOffWorkflow
    from workflows.watch_contracts import WatchInput

# workflow.patched: a manual run enters ``awaiting_approval`` in open_run's transaction.
APPROVAL_WITH_OPENING = "approval-with-opening"
# workflow.patched: the run enters ``billing`` in post_billing's transaction, one activity fewer.
BILLING_WITH_ITS_LINES = "billing-with-its-lines"
# workflow.patched: a run without dependencies records its final approval in post_billing.
FINAL_APPROVAL_WITH_BILLING = "final-approval-with-billing"


@workflow.defn
class MilestoneRun(SignOffWorkflow):
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("BillingConflict", "RunNotFound"))

    def __init__(self) -> None:
        super().__init__()
        self._upstream_changed = False
        self._entered_approval = False

    @workflow.signal
    def upstream_accepted(self, milestone_id: str) -> None:
        self._upstream_changed = True

    # ---- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RunInput) -> RunStatus:
        self._inp = inp
        self._status = RunStatus(
            run_id=inp.run_id,
            milestone_id=inp.milestone_id,
            stage="received",
            engagement_id=inp.engagement_id,
        )
        self._approval = Approval(
            inp.subject, self._status, self._inbox, self._activity, on_change=self._show
        )
        self._approval.defers_final_approval = self._records_final_approval_with_billing
        self._show()
        return await self._run_to_an_end(self._proceed())

    async def _proceed(self) -> RunStatus:
        assert self._status is not None and self._approval is not None
        opened_at = iso(workflow.now())
        # A manual run that is in time goes to approval whatever its criteria say: it enters
        # it in the transaction that opens it.
        self._entered_approval = (
            self._inp.trigger_mode == "manual"
            and not self._too_late(opened_at)
            and workflow.patched(APPROVAL_WITH_OPENING)
        )
        if self._entered_approval:
            # Open to decisions already: the database says awaiting approval (and the approvers
            # are emailed) the moment open_run commits, before this run hears it completed. The
            # stage follows once it has, with the deadlines open_run planned.
            self._status.pending_roles = list(self._inp.policy.roles)
        opened: RunOpened = await self._activity(
            "open_run",
            OpenRun(run=self._inp, opened_at=opened_at, enters_approval=self._entered_approval),
            RunOpened,
            "record trigger, link evidence, evaluate criteria",
        )
        self._status.criteria = opened.criteria
        self._status.deadlines.update({DEADLINE_FIELDS[d.kind]: d.at for d in opened.deadlines})
        self._status.amounts = opened.amounts

        accepted = await self._in_time(opened_at)
        if accepted:
            accepted = await self._accept(opened)
        if accepted:
            accepted = await self._await_dependencies()
        if accepted:
            await self._bill()
        await self._approval.ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _in_time(self, triggered_at: str) -> bool:
        """A bonus or success fee triggered after its deadline can no longer qualify.

        Decided here, on the workflow's clock, rather than by the API: the trigger is recorded
        and audited either way, and the run says why it closed."""
        if not self._too_late(triggered_at):
            return True
        await self._close(
            "ineligible",
            "deadline_passed",
            f"triggered at {triggered_at}, after the deadline {self._inp.deadline}",
        )
        return False

    def _too_late(self, triggered_at: str) -> bool:
        deadline = self._inp.deadline
        return deadline is not None and datetime.fromisoformat(
            triggered_at
        ) > datetime.fromisoformat(deadline)

    async def _accept(self, opened: RunOpened) -> bool:
        if self._inp.trigger_mode in ("automatic", "both"):
            failed = [c for c in opened.criteria if c.passed is False]
            if failed:
                detail = "; ".join(f"{c.id}: {c.detail}" for c in failed)
                await self._close("rejected", "criteria_failed", f"criteria failed: {detail}")
                return False
        if self._inp.trigger_mode == "automatic":
            passed = ", ".join(c.id for c in opened.criteria if c.passed) or "no criteria"
            await self._approval.record(
                DecisionView(
                    role="criteria",
                    principal_id=None,
                    decision="approve",
                    via="automatic",
                    comment=f"machine-checkable criteria passed: {passed}",
                    at=iso(workflow.now()),
                )
            )
            return True
        return await self._collect_approvals(opened.deadlines)

    async def _collect_approvals(self, deadlines: list[Deadline]) -> bool:
        assert self._status is not None and self._approval is not None
        if self._entered_approval:
            self._status.stage = "awaiting_approval"
            self._upsert_stage()
        else:
            self._status.pending_roles = list(self._inp.policy.roles)
            await self._set_stage("awaiting_approval")
        verdict = await self._approval.collect(deadlines)
        if verdict.outcome == "approved":
            return True
        await self._close(verdict.outcome, verdict.outcome, verdict.detail)
        return False

    async def _await_dependencies(self) -> bool:
        if not self._inp.depends_on:
            return True
        status = self._status
        assert status is not None
        while True:
            self._upstream_changed = False
            check: DependencyCheck = await self._activity(
                "check_dependencies",
                CheckDependencies(run=self._inp, at=iso(workflow.now())),
                DependencyCheck,
                "check upstream milestones",
            )
            status.waiting_on = check.waiting_on
            self._show()
            if check.state == "satisfied":
                return True
            if check.state == "impossible":
                await self._close("ineligible", "ineligible", "; ".join(check.details))
                return False
            if status.stage != "waiting_on_dependency":
                await self._set_stage("waiting_on_dependency")
            # Woken by the upstream run once it is accepted; the check above is the truth.
            await workflow.wait_condition(
                lambda: self._upstream_changed or bool(self._inbox) or self._cancel_requested()
            )
            assert self._approval is not None
            self._approval.stop_if_cancelled()
            await self._approval.ignore_inbox()

    async def _bill(self) -> None:
        status = self._status
        assert status is not None
        status.waiting_on = []
        self._firm = True  # from here on the run finishes what it started
        enters_billing = workflow.patched(BILLING_WITH_ITS_LINES)
        if enters_billing:
            status.stage = "billing"
            self._upsert_stage()
        else:
            await self._set_stage("billing")
        billed_at = iso(workflow.now())
        assert self._approval is not None
        decision = self._approval.take_deferred()
        recording = f"record {decision.role}'s approval, " if decision else ""
        result: BillingResult = await self._activity(
            "post_billing",
            PostBilling(
                run=self._inp, at=billed_at, enters_billing=enters_billing, decision=decision
            ),
            BillingResult,
            f"{recording}post invoice lines for {self._inp.milestone_key}",
        )
        status.amounts = result.amounts
        status.invoice_id = result.invoice_id
        status.stage = "billed"
        status.outcome = "billed"
        self._upsert_stage()
        for run_id in result.dependant_run_ids:
            try:
                await workflow.get_external_workflow_handle(run_id).signal(
                    MilestoneRun.upstream_accepted, self._inp.milestone_id
                )
            except Exception:
                workflow.logger.info("dependant run %s not signalled (closed)", run_id)
        if self._inp.clawback is not None:
            await self._start_watch(result.amounts.gross_minor, billed_at)

    async def _start_watch(self, billed_minor: int, billed_at: str) -> None:
        """Hand the billed bonus to its clawback watch, a workflow that outlives this run.

        Started by an activity rather than as an abandoned child: the watch then never reports
        back to a run long closed (which also keeps Temporal's time-skipping test server, whose
        clock stops once an abandoned child completes, usable in tests)."""
        inp = self._inp
        assert inp.clawback is not None and self._status is not None
        watch = WatchInput(
            watch_id=watch_id_for(inp.milestone_id),
            engagement_id=inp.engagement_id,
            customer_id=inp.customer_id,
            milestone_id=inp.milestone_id,
            milestone_key=inp.milestone_key,
            milestone_name=inp.milestone_name,
            bonus_run_id=inp.run_id,
            billed_minor=billed_minor,
            currency=inp.currency,
            clawback=inp.clawback,
            calendar=inp.policy.calendar,
            billed_at=billed_at,
        )
        await self._activity(
            "start_clawback_watch", watch, None, f"start the clawback watch of {inp.milestone_key}"
        )
        self._status.details["clawback_watch_id"] = watch.watch_id
        self._show()

    # ---- helpers --------------------------------------------------------------------------

    def _records_final_approval_with_billing(self) -> bool:
        """Without dependencies, the final approval leads straight to billing: post_billing
        records it (committed first, on its own), one activity fewer per run."""
        return not self._inp.depends_on and workflow.patched(FINAL_APPROVAL_WITH_BILLING)

    async def _set_stage(self, stage: str) -> None:
        assert self._status is not None
        self._status.stage = stage
        self._upsert_stage()
        await self._activity(
            "set_stage",
            SetStage(run=self._inp, stage=stage, at=iso(workflow.now())),
            None,
            f"stage → {stage}",
        )

    async def _close(self, stage: str, outcome: str, detail: str) -> None:
        """Recorded first, then shown: a caller that reads the end finds the claim released."""
        assert stage in TERMINAL_STAGES
        assert self._status is not None
        self._firm = True
        # The search attribute first, as histories recorded it; the query once it is committed.
        workflow.upsert_search_attributes([sa.STAGE.value_set(stage)])
        await self._activity(
            "set_stage",
            SetStage(
                run=self._inp, stage=stage, at=iso(workflow.now()), outcome=outcome, detail=detail
            ),
            None,
            f"close run: {stage}",
        )
        self._status.stage = stage
        self._status.outcome = outcome
        self._status.outcome_detail = detail
        self._status.pending_roles = []
        self._show()

    def _upsert_stage(self) -> None:
        assert self._status is not None
        workflow.upsert_search_attributes([sa.STAGE.value_set(self._status.stage)])
        self._show()

    def _describe(self, status: RunStatus) -> list[str]:
        inp = self._inp
        paragraphs = [
            f"Milestone `{inp.milestone_key}` ({inp.milestone_name}) of engagement "
            f"`{inp.engagement_id}`, {inp.completion_percent}% complete."
        ]
        paragraphs += super()._describe(status)
        if status.stage == "waiting_on_dependency":
            gates = [
                f"- `{dep.milestone_key}` accepted"
                + (
                    f" with `{dep.kpi['metric']} {dep.kpi['op']} {dep.kpi['threshold']}`"
                    if dep.kpi
                    else ""
                )
                for dep in inp.depends_on
                if dep.milestone_key in status.waiting_on
            ]
            paragraphs += ["Waiting for:", "\n".join(gates)]
        watch = status.details.get("clawback_watch_id")
        if watch:
            paragraphs.append(f"Clawback watch: `{watch}`.")
        return paragraphs
