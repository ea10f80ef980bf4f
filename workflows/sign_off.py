"""What every sign-off workflow shares: how decisions and cancellations arrive, and the way out.

Milestone runs, close-outs and change orders collect decisions the same way: the ``decide``
Update (the API; judged by its validator before it is accepted, taken into the run's status and
answered at once, then recorded by the approval loop) and the ``decide`` signal (operators, from
the Temporal UI or the CLI; judged when it is taken from the queue, and audited when ignored).
Whatever happens to a run — an admin cancels it, an operator cancels it in Temporal, an activity
exhausts its retries — it ends in a recorded stage (``cancelled`` or ``failed``, with the reason)
that releases what it held.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import RunStage
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import ActivityCall, way_out_caller
    from workflows.approval import Approval, Queued, Verdict
    from workflows.contracts import (
        DEADLINE_FIELDS,
        TERMINAL_STAGES,
        ApprovalPolicy,
        CancelRequest,
        Deadline,
        DecisionSignal,
        EndRun,
        PlanDeadlines,
        RunStatus,
    )

NO_REASON = "cancelled in Temporal (no reason given)"
# workflow.patched: a run cancelled while an activity is in flight is recorded cancelled.
CANCELLED_MID_ACTIVITY = "cancelled-mid-activity"
# workflow.patched: an Update's decision is taken and answered at once, not after its recording.
DECISION_TAKEN_ON_ARRIVAL = "decision-taken-on-arrival"
# workflow.patched: an admin's cancellation that arrived as an awaited activity completed (and so
# was not raised in the body) stops the body at its next wait instead of leaving the cancel
# Update waiting for good.
CANCEL_SEEN_AT_NEXT_WAIT = "cancel-seen-at-next-wait"

# The first line of the Temporal UI's "Current Details", per stage.
HEADLINES = {
    "received": "Starting: recording the request.",
    "awaiting_approval": "Awaiting approval.",
    "waiting_on_dependency": "Signed off; waiting on upstream milestones before billing.",
    "billing": "Signed off; posting the invoice lines.",
    "accepted": "Signed off; closing the engagement.",
    "warranty": "Signed off; holding the retention until the warranty ends.",
}


class SignOffWorkflow:
    _end_activity = staticmethod(way_out_caller())
    # Each sign-off's own: its activity caller (with its business errors) and stage recorder.
    _activity: ActivityCall
    _set_stage: Callable[[str], Awaitable[None]]

    def __init__(self) -> None:
        self._status: RunStatus | None = None
        self._inbox: list[Queued] = []
        self._approval: Approval | None = None
        self._body: asyncio.Task[RunStatus] | None = None
        self._cancel_request: CancelRequest | None = None
        # Past the point of no return (billing, applying, releasing): cancellation is refused.
        self._firm = False
        self._ended = False

    # ---- messages -------------------------------------------------------------------------

    @workflow.signal(name="decide")
    def decide(self, signal: DecisionSignal) -> None:
        """An operator's decision: queued, then judged by the approval loop."""
        if self._approval is None:
            self._inbox.append(Queued(iso(workflow.now()), signal))
        else:
            self._approval.enqueue(signal)

    @workflow.update(name="decide")
    async def decide_now(self, signal: DecisionSignal) -> RunStatus:
        """A decision from the API: accepted only if the run can take it, then taken into the
        run's status and answered with it in the same workflow task. The Update is in the
        history from then on, so the decision survives any crash; the approval loop records it
        (a run that ends first audits it as ignored). Before this patch the answer waited until
        the decision was recorded — behind any activity the loop was waiting on — and histories
        recorded then replay that way."""
        approval = self._approval
        assert approval is not None and self._status is not None
        if workflow.patched(DECISION_TAKEN_ON_ARRIVAL):
            approval.take(signal)
            return self._status
        ticket = approval.enqueue(signal)
        await workflow.wait_condition(lambda: ticket in approval.settled)
        ignored = approval.settled[ticket]
        if ignored is not None:
            raise ApplicationError(ignored, type="DecisionConflict", non_retryable=True)
        return self._status

    @decide_now.validator
    def _judge_decision(self, signal: DecisionSignal) -> None:
        if self._approval is None or self._status is None or self._ended:
            stage = self._status.stage if self._status else "starting"
            raise ApplicationError(
                f"run is {stage}, not awaiting approval", type="DecisionConflict"
            )
        refusal = self._approval.refusal(signal)
        if refusal is not None:
            raise ApplicationError(refusal.reason, type=refusal.kind)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> RunStatus:
        """An admin's cancellation: the run ends ``cancelled`` and releases what it held."""
        assert self._body is not None and self._status is not None
        self._cancel_request = request
        self._body.cancel()
        await workflow.wait_condition(lambda: self._ended)
        return self._status

    @cancel.validator
    def _judge_cancel(self, request: CancelRequest) -> None:
        if not request.reason.strip():
            raise ApplicationError("a cancellation needs a reason", type="CancelInvalid")
        status = self._status
        if status is None or self._body is None or self._ended or status.stage in TERMINAL_STAGES:
            stage = status.stage if status else "starting"
            raise ApplicationError(f"the run is {stage}", type="CancelConflict")
        if self._firm:
            raise ApplicationError(
                f"the run is {status.stage}: past sign-off it finishes what it started",
                type="CancelConflict",
            )

    @workflow.query
    def status(self) -> RunStatus:
        assert self._status is not None
        return self._status

    async def _sign_off(self, policy: ApprovalPolicy) -> Verdict:
        """Plan the deadlines, await the decisions; once decided, the run is past cancelling."""
        status, approval = self._status, self._approval
        assert status is not None and approval is not None
        deadlines: list[Deadline] = await self._activity(
            "plan_deadlines",
            PlanDeadlines(policy=policy, start=iso(workflow.now())),
            list[Deadline],
            "plan sign-off deadlines",
        )
        status.deadlines.update({DEADLINE_FIELDS[d.kind]: d.at for d in deadlines})
        status.pending_roles = list(policy.roles)
        await self._set_stage("awaiting_approval")
        verdict = await approval.collect(deadlines)
        self._firm = True
        return verdict

    # ---- the way out ------------------------------------------------------------------------

    async def _run_to_an_end(self, body: Coroutine[Any, Any, RunStatus]) -> RunStatus:
        """Run ``body`` so that every way it can end is recorded and releases the run's claims."""
        task = self._body = asyncio.create_task(body)
        if self._approval is not None:
            self._approval.cancel_requested = self._cancel_requested
            self._approval.stop_for_cancel = self._stop_for_cancel
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                request = self._cancel_request
                if request is not None and task.done():
                    return await self._end(RunStage.CANCELLED, _by(request))
                if self._firm:
                    workflow.logger.warning("cancellation refused: the run is past sign-off")
                    continue
                task.cancel()
                try:
                    await task  # the body stops where it was; the way out records it below
                except BaseException as err:
                    if not _stopped_by_cancellation(err):
                        raise
                await self._end(RunStage.CANCELLED, NO_REASON)
                raise
            except ActivityError as err:
                request = self._cancel_request
                if request is not None and _stopped_by_cancellation(err):
                    return await self._end(RunStage.CANCELLED, _by(request))
                detail = _why(err)
                await self._end(RunStage.FAILED, detail)
                raise ApplicationError(
                    f"run failed: {detail}", type="RunFailed", non_retryable=True
                ) from err

    def _cancel_requested(self) -> bool:
        return self._cancel_request is not None and not self._firm

    def _stop_for_cancel(self) -> bool:
        """Called only when a requested cancellation finds the body still running."""
        return workflow.patched(CANCEL_SEEN_AT_NEXT_WAIT)

    async def _end(self, stage: RunStage, detail: str) -> RunStatus:
        status = self._status
        assert status is not None
        self._firm = True
        await self._end_activity(
            "end_run",
            EndRun(run_id=status.run_id, stage=stage, detail=detail, at=iso(workflow.now())),
            None,
            f"end run: {stage}",
        )
        status.stage = status.outcome = str(stage)
        status.outcome_detail = detail
        status.pending_roles = []
        workflow.upsert_search_attributes([sa.STAGE.value_set(status.stage)])
        if self._approval is not None:
            await self._approval.ignore_inbox()
            self._approval.abandon(f"run is {stage}")
        self._ended = True
        self._show()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    # ---- what the run waits for: the Temporal UI's "Current Details" --------------------------

    def _show(self) -> None:
        """Refresh the Markdown the UI shows. Not a command: recorded histories replay as before."""
        if self._status is not None:
            workflow.set_current_details("\n\n".join(self._describe(self._status)))

    def _describe(self, status: RunStatus) -> list[str]:
        """Paragraphs: the stage, then what the run waits for; subclasses add their own."""
        if status.stage in TERMINAL_STAGES:
            ended = f"**Ended: {status.stage}**"
            return [ended + (f" — {status.outcome_detail}" if status.outcome_detail else "")]
        headline = HEADLINES.get(status.stage, status.stage.replace("_", " ").capitalize() + ".")
        paragraphs = [f"**{headline}**"]
        if status.stage == "awaiting_approval" and self._approval is not None:
            paragraphs += self._approval.waiting_for(workflow.now())
        return paragraphs


def _by(request: CancelRequest) -> str:
    return f"cancelled by {request.by}: {request.reason}"


def _stopped_by_cancellation(err: BaseException) -> bool:
    """Whether a cancelled body stopped because of the cancellation. Waiting on a timer or a
    condition it raises ``CancelledError``; waiting on an activity it raises an ``ActivityError``
    caused by the cancelled activity — the way out must record both (before this patch the
    second failed the run unrecorded, leaving it open in the database)."""
    if isinstance(err, asyncio.CancelledError):
        return True
    return is_cancelled_exception(err) and workflow.patched(CANCELLED_MID_ACTIVITY)


def _why(err: ActivityError) -> str:
    cause = err.cause
    message = getattr(cause, "message", None) or str(cause or err)
    kind = getattr(cause, "type", None)
    return f"{err.activity_type} gave up{f' ({kind})' if kind else ''}: {message}"[:1000]
