"""The milestone run: one durable workflow per trigger.

received → awaiting_approval → waiting_on_dependency → billing → billed
(or rejected / expired / ineligible). Decisions only: every side effect is an activity.
"""

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.contracts import (
        DEADLINE_FIELDS,
        TERMINAL_STAGES,
        BillingResult,
        CheckDependencies,
        Deadline,
        DecisionSignal,
        DecisionView,
        DependencyCheck,
        Notify,
        OpenRun,
        PostBilling,
        RecordDecision,
        RecordIgnoredDecision,
        RunInput,
        RunOpened,
        RunStatus,
        SetStage,
    )

# Errors that retrying cannot fix: the activity raises them as non-retryable ApplicationErrors.
BUSINESS_ERRORS = ["BillingConflict", "RunNotFound"]
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=BUSINESS_ERRORS,
)


@workflow.defn
class MilestoneRun:
    def __init__(self) -> None:
        self._status: RunStatus | None = None
        self._inbox: list[tuple[str, DecisionSignal]] = []
        self._signals_seen = 0
        self._upstream_changed = False

    # ---- messages -------------------------------------------------------------------------

    @workflow.signal
    def decide(self, signal: DecisionSignal) -> None:
        """Queued, then validated and recorded by the main loop (never acted on here)."""
        self._inbox.append((_iso(workflow.now()), signal))

    @workflow.signal
    def upstream_accepted(self, milestone_id: str) -> None:
        self._upstream_changed = True

    @workflow.query
    def status(self) -> RunStatus:
        assert self._status is not None
        return self._status

    # ---- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RunInput) -> RunStatus:
        self._inp = inp
        self._status = RunStatus(run_id=inp.run_id, milestone_id=inp.milestone_id, stage="received")
        opened: RunOpened = await self._activity(
            "open_run",
            OpenRun(run=inp, opened_at=_iso(workflow.now())),
            RunOpened,
            "record trigger, link evidence, evaluate criteria",
        )
        self._status.criteria = opened.criteria
        self._status.deadlines.update({DEADLINE_FIELDS[d.kind]: d.at for d in opened.deadlines})
        self._status.amounts = opened.amounts

        accepted = await self._accept(opened)
        if accepted:
            accepted = await self._await_dependencies()
        if accepted:
            await self._bill()
        await self._ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _accept(self, opened: RunOpened) -> bool:
        if self._inp.trigger_mode in ("automatic", "both"):
            failed = [c for c in opened.criteria if c.passed is False]
            if failed:
                detail = "; ".join(f"{c.id}: {c.detail}" for c in failed)
                await self._close("rejected", "criteria_failed", f"criteria failed: {detail}")
                return False
        if self._inp.trigger_mode == "automatic":
            passed = ", ".join(c.id for c in opened.criteria if c.passed) or "no criteria"
            await self._record(
                DecisionView(
                    role="criteria",
                    principal_id=None,
                    decision="approve",
                    via="automatic",
                    comment=f"machine-checkable criteria passed: {passed}",
                    at=_iso(workflow.now()),
                )
            )
            return True
        return await self._collect_approvals(opened.deadlines)

    async def _collect_approvals(self, deadlines: list[Deadline]) -> bool:
        status = self._status
        assert status is not None
        status.pending_roles = list(self._inp.policy.roles)
        await self._set_stage("awaiting_approval")
        timers = sorted(deadlines, key=lambda d: d.at)
        while True:
            await self._drain_inbox()
            if any(d.decision == "reject" for d in status.decisions):
                rejection = next(d for d in status.decisions if d.decision == "reject")
                await self._close(
                    "rejected", "rejected", f"rejected by {rejection.role}: {rejection.comment}"
                )
                return False
            if not status.pending_roles:
                return True
            if not timers:
                await workflow.wait_condition(lambda: bool(self._inbox))
                continue
            timer = timers[0]
            remaining = datetime.fromisoformat(timer.at) - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._inbox), timeout=remaining, timeout_summary=timer.label
                    )
                    continue
                except TimeoutError:
                    pass
            timers.pop(0)
            if not await self._on_deadline(timer):
                return False

    async def _on_deadline(self, timer: Deadline) -> bool:
        """Act on a deadline that passed; False when it ends the run."""
        status = self._status
        assert status is not None
        now = _iso(workflow.now())
        if timer.kind in ("reminder", "escalation"):
            if timer.kind == "escalation":
                status.escalated_roles = list(status.pending_roles)
            await self._activity(
                "notify",
                Notify(run=self._inp, kind=timer.kind, roles=list(status.pending_roles), at=now),
                None,
                f"{timer.kind}: {', '.join(status.pending_roles)}",
            )
        elif timer.kind == "deemed_acceptance":
            for role in [r for r in status.pending_roles if r in self._inp.policy.client_roles]:
                await self._record(
                    DecisionView(
                        role=role,
                        principal_id=None,
                        decision="approve",
                        via="deemed",
                        comment=f"deemed accepted: no notice of nonconformity ({timer.label})",
                        at=now,
                    )
                )
        elif timer.kind == "expiry":
            pending = ", ".join(status.pending_roles)
            await self._close("expired", "expired", f"no decision from {pending} ({timer.label})")
            return False
        return True

    async def _drain_inbox(self) -> None:
        while self._inbox:
            at, signal = self._inbox.pop(0)
            via, reason = self._validate(signal)
            if reason is not None:
                await self._record_ignored(at, signal, reason)
                continue
            await self._record(
                DecisionView(
                    role=signal.role,
                    principal_id=signal.principal_id,
                    decision=signal.decision,
                    via=via,
                    comment=signal.comment,
                    at=at,
                    evidence_ids=list(signal.evidence_ids),
                )
            )

    async def _ignore_inbox(self) -> None:
        """Decisions that arrive once approval is over are audited, never acted on."""
        while self._inbox:
            at, signal = self._inbox.pop(0)
            assert self._status is not None
            await self._record_ignored(
                at, signal, f"run is {self._status.stage}, not awaiting approval"
            )

    async def _record_ignored(self, at: str, signal: DecisionSignal, reason: str) -> None:
        self._signals_seen += 1
        await self._activity(
            "record_ignored_decision",
            RecordIgnoredDecision(
                run=self._inp, signal=signal, reason=reason, at=at, sequence=self._signals_seen
            ),
            None,
            f"ignored decision for {signal.role}: {reason}",
        )

    def _validate(self, signal: DecisionSignal) -> tuple[str, str | None]:
        """The API checked already; the workflow checks again against its own snapshot."""
        status = self._status
        assert status is not None
        policy = self._inp.policy
        if signal.role not in policy.roles:
            return "", f"unknown role {signal.role!r}"
        if signal.role not in status.pending_roles:
            return "", f"role {signal.role!r} has already decided"
        if signal.decision not in ("approve", "reject"):
            return "", f"unknown decision {signal.decision!r}"
        if signal.decision == "reject" and not signal.comment.strip():
            return "", "a rejection needs a comment"
        if signal.principal_id in policy.roles[signal.role]:
            return "approver", None
        if signal.role in status.escalated_roles and signal.principal_id in policy.escalation.get(
            signal.role, []
        ):
            return "escalation", None
        return "", f"principal {signal.principal_id} may not decide for {signal.role!r}"

    async def _record(self, decision: DecisionView) -> None:
        status = self._status
        assert status is not None
        status.decisions.append(decision)
        if decision.role in status.pending_roles:
            status.pending_roles.remove(decision.role)
        summary = f"{decision.decision} by {decision.role} via {decision.via}"
        await self._activity(
            "record_decision", RecordDecision(run=self._inp, decision=decision), None, summary
        )

    async def _await_dependencies(self) -> bool:
        if not self._inp.depends_on:
            return True
        status = self._status
        assert status is not None
        while True:
            self._upstream_changed = False
            check: DependencyCheck = await self._activity(
                "check_dependencies",
                CheckDependencies(run=self._inp, at=_iso(workflow.now())),
                DependencyCheck,
                "check upstream milestones",
            )
            status.waiting_on = check.waiting_on
            if check.state == "satisfied":
                return True
            if check.state == "impossible":
                await self._close("ineligible", "ineligible", "; ".join(check.details))
                return False
            if status.stage != "waiting_on_dependency":
                await self._set_stage("waiting_on_dependency")
            # Woken by the upstream run once it is accepted; the check above is the truth.
            await workflow.wait_condition(lambda: self._upstream_changed or bool(self._inbox))
            await self._ignore_inbox()

    async def _bill(self) -> None:
        status = self._status
        assert status is not None
        status.waiting_on = []
        await self._set_stage("billing")
        result: BillingResult = await self._activity(
            "post_billing",
            PostBilling(run=self._inp, at=_iso(workflow.now())),
            BillingResult,
            f"post invoice lines for {self._inp.milestone_key}",
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

    # ---- helpers --------------------------------------------------------------------------

    async def _set_stage(self, stage: str) -> None:
        assert self._status is not None
        self._status.stage = stage
        self._upsert_stage()
        await self._activity(
            "set_stage",
            SetStage(run=self._inp, stage=stage, at=_iso(workflow.now())),
            None,
            f"stage → {stage}",
        )

    async def _close(self, stage: str, outcome: str, detail: str) -> None:
        assert stage in TERMINAL_STAGES
        assert self._status is not None
        self._status.stage = stage
        self._status.outcome = outcome
        self._status.outcome_detail = detail
        self._status.pending_roles = []
        self._upsert_stage()
        await self._activity(
            "set_stage",
            SetStage(
                run=self._inp, stage=stage, at=_iso(workflow.now()), outcome=outcome, detail=detail
            ),
            None,
            f"close run: {stage}",
        )

    def _upsert_stage(self) -> None:
        assert self._status is not None
        workflow.upsert_search_attributes([sa.STAGE.value_set(self._status.stage)])

    async def _activity(self, name: str, arg: Any, result_type: type | None, summary: str) -> Any:
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=ACTIVITY_RETRY,
            summary=summary,
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
