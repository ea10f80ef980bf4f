"""Dual sign-off, shared by milestone runs, close-outs and change orders.

Decisions arrive as ``decide`` Updates (the API: judged by ``refusal`` before they are accepted
and taken into the status at once, so the caller hears the truth without waiting for the
recording) or ``decide`` signals (operators: judged when taken from the queue); the approval loop
records them in order, while the reminder → escalation → deemed-acceptance
warning → deemed acceptance → expiry timers run. A workflow may take the final approval over and
record it with what follows (a milestone run without dependencies: with its billing).
Deterministic: it only waits, and calls activities through the workflow.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import ActivityCall
    from workflows.contracts import (
        DEADLINE_FIELDS,
        Deadline,
        DecisionSignal,
        DecisionView,
        Notify,
        RecordDecision,
        RecordIgnoredDecision,
        RunStatus,
        Subject,
    )


# How "Current Details" names each deadline kind (``DEADLINE_FIELDS`` orders them).
DEADLINE_WORDS = {
    "reminder": "reminder",
    "escalation": "escalation",
    "deemed_acceptance": "deemed accepted",
    "expiry": "expires",
}


@dataclass
class Verdict:
    outcome: str  # approved | rejected | expired
    detail: str = ""


@dataclass
class Refusal:
    """Why a decision cannot be taken; ``kind`` is the error type the API maps to a status."""

    kind: str  # DecisionForbidden | DecisionConflict | DecisionInvalid
    reason: str


@dataclass
class Queued:
    at: str
    signal: DecisionSignal
    ticket: int = 0
    # An Update's decision, already judged and in the status: the loop only records it.
    taken: DecisionView | None = None


class Approval:
    def __init__(
        self,
        subject: Subject,
        status: RunStatus,
        inbox: list[Queued],
        activity: ActivityCall,
        on_change: Callable[[], None],
    ) -> None:
        self._subject = subject
        self._status = status
        self._inbox = inbox
        self._activity = activity
        # Called whenever what the run waits for changes (a decision, a deadline that passed).
        self._on_change = on_change
        self._ignored = 0
        self._tickets = 0
        # Whether an admin's cancellation is waiting for this loop to stop (set by the workflow).
        self.cancel_requested: Callable[[], bool] = lambda: False
        self.stop_for_cancel: Callable[[], bool] = lambda: False
        # Ticket → None once recorded, or the reason it was ignored.
        self.settled: dict[int, str | None] = {}
        # Whether the workflow records the final approval itself, with what follows it (asked
        # only once a final approval is in hand, so it may call ``workflow.patched``).
        self.defers_final_approval: Callable[[], bool] = lambda: False
        self._deferred: DecisionView | None = None

    def enqueue(self, signal: DecisionSignal) -> int:
        """Queue a decision for the approval loop; its ticket settles once it is judged."""
        self._tickets += 1
        self._inbox.append(Queued(iso(workflow.now()), signal, self._tickets))
        return self._tickets

    def take(self, signal: DecisionSignal) -> None:
        """Take an Update's decision into the status now (its validator judged it in this same
        activation); the approval loop records it, in arrival order."""
        via, refusal = self._judge(signal)
        if refusal is not None:  # not after the validator's judgement; kept as a guard
            raise ApplicationError(refusal.reason, type=refusal.kind, non_retryable=True)
        at = iso(workflow.now())
        decision = DecisionView(
            role=signal.role,
            principal_id=signal.principal_id,
            decision=signal.decision,
            via=via,
            comment=signal.comment,
            at=at,
            evidence_ids=list(signal.evidence_ids),
        )
        self._apply(decision)
        self._inbox.append(Queued(at, signal, taken=decision))

    def abandon(self, reason: str) -> None:
        """Settle every ticket still open (the run ended while one was being recorded)."""
        for ticket in range(1, self._tickets + 1):
            self.settled.setdefault(ticket, reason)

    async def collect(self, deadlines: list[Deadline]) -> Verdict:
        """Wait until every role approved, one rejected, or the expiry deadline passed."""
        status = self._status
        # Decisions taken while the run was still entering approval keep their roles decided.
        decided = {d.role for d in status.decisions}
        status.pending_roles = [r for r in self._subject.policy.roles if r not in decided]
        timers = sorted(deadlines, key=lambda d: d.at)
        while True:
            await self._drain_inbox()
            self.stop_if_cancelled()
            rejection = next((d for d in status.decisions if d.decision == "reject"), None)
            if rejection is not None:
                return Verdict("rejected", f"rejected by {rejection.role}: {rejection.comment}")
            if not status.pending_roles:
                return Verdict("approved")
            if not timers:
                await workflow.wait_condition(lambda: bool(self._inbox) or self.cancel_requested())
                continue
            timer = timers[0]
            remaining = datetime.fromisoformat(timer.at) - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._inbox) or self.cancel_requested(),
                        timeout=remaining,
                        timeout_summary=timer.label,
                    )
                    continue
                except TimeoutError:
                    pass  # the deadline passed: act on it below
            timers.pop(0)
            if timer.kind == "expiry":
                pending = ", ".join(status.pending_roles)
                return Verdict("expired", f"no decision from {pending} ({timer.label})")
            await self._on_deadline(timer)
            self._on_change()

    async def _on_deadline(self, timer: Deadline) -> None:
        status = self._status
        now = iso(workflow.now())
        if timer.kind in ("reminder", "escalation"):
            if timer.kind == "escalation":
                status.escalated_roles = list(status.pending_roles)
            await self._activity(
                "notify",
                Notify(
                    subject=self._subject, kind=timer.kind, roles=list(status.pending_roles), at=now
                ),
                None,
                f"{timer.kind}: {', '.join(status.pending_roles)}",
            )
        elif timer.kind == "deemed_warning":
            # Planned only since the warning existed, so older histories never reach this.
            silent = self._silent_clients()
            if silent:
                await self._activity(
                    "notify",
                    Notify(subject=self._subject, kind=timer.kind, roles=silent, at=now),
                    None,
                    f"deemed-acceptance warning: {', '.join(silent)}",
                )
        elif timer.kind == "deemed_acceptance":
            for role in self._silent_clients():
                await self.record(
                    DecisionView(
                        role=role,
                        principal_id=None,
                        decision="approve",
                        via="deemed",
                        comment=f"deemed accepted: no notice of nonconformity ({timer.label})",
                        at=now,
                    )
                )

    def _silent_clients(self) -> list[str]:
        """The pending roles whose silence accepts."""
        client_roles = self._subject.policy.client_roles
        return [r for r in self._status.pending_roles if r in client_roles]

    def stop_if_cancelled(self) -> None:
        """Stop for a cancellation the loop did not see: one that arrived as an activity it
        awaited completed (the SDK then returns the result instead of raising)."""
        if self.cancel_requested() and self.stop_for_cancel():
            raise asyncio.CancelledError("cancelled while an activity completed")

    def _is_final_approval(self, decision: DecisionView) -> bool:
        """The approval that completes the sign-off, with nothing queued behind it."""
        status = self._status
        return (
            not self._inbox
            and not status.pending_roles
            and all(d.decision == "approve" for d in status.decisions)
            and decision.decision == "approve"
        )

    def take_deferred(self) -> DecisionView | None:
        """The final approval the loop left for the workflow to record (once). Nothing comes
        between: ``collect`` returns with it, and the run turns firm before it next waits."""
        deferred, self._deferred = self._deferred, None
        return deferred

    async def _drain_inbox(self) -> None:
        while self._inbox:
            self.stop_if_cancelled()
            queued = self._inbox.pop(0)
            if queued.taken is None:
                signal = queued.signal
                via, refusal = self._judge(signal)
                if refusal is not None:
                    await self._record_ignored(queued, refusal.reason)
                    continue
                queued.taken = DecisionView(
                    role=signal.role,
                    principal_id=signal.principal_id,
                    decision=signal.decision,
                    via=via,
                    comment=signal.comment,
                    at=queued.at,
                    evidence_ids=list(signal.evidence_ids),
                )
                self._apply(queued.taken)
            if self._is_final_approval(queued.taken) and self.defers_final_approval():
                self._deferred = queued.taken
            else:
                await self._record_activity(queued.taken)
            if queued.ticket:  # an operator's signal (or an Update from before the patch)
                self.settled[queued.ticket] = None

    async def ignore_inbox(self) -> None:
        """Decisions that arrive once approval is over are audited, never acted on."""
        while self._inbox:
            queued = self._inbox.pop(0)
            if queued.taken is not None:  # taken, then the run ended before recording it
                self._status.decisions.remove(queued.taken)
            stage = self._status.stage
            await self._record_ignored(queued, f"run is {stage}, not awaiting approval")

    async def _record_ignored(self, queued: Queued, reason: str) -> None:
        self._ignored += 1
        signal = queued.signal
        await self._activity(
            "record_ignored_decision",
            RecordIgnoredDecision(
                subject=self._subject,
                signal=signal,
                reason=reason,
                at=queued.at,
                sequence=self._ignored,
            ),
            None,
            f"ignored decision for {signal.role}: {reason}",
        )
        self.settled[queued.ticket] = reason

    def refusal(self, signal: DecisionSignal) -> Refusal | None:
        """Why an Update's decision cannot be taken now (None: it can). Also refuses a role whose
        decision is already queued, so of two racing decisions for one role only one is taken."""
        if any(q.signal.role == signal.role for q in self._inbox):
            return Refusal("DecisionConflict", f"role {signal.role!r} has already decided")
        return self._judge(signal)[1]

    def _judge(self, signal: DecisionSignal) -> tuple[str, Refusal | None]:
        """The one judgement of a decision, against the run's frozen policy and its state."""
        status = self._status
        policy = self._subject.policy
        if signal.role not in policy.roles:
            return "", Refusal("DecisionInvalid", f"unknown role {signal.role!r}")
        if signal.role not in status.pending_roles:
            if any(d.role == signal.role for d in status.decisions):
                reason = f"role {signal.role!r} has already decided"
            else:
                reason = f"run is {status.stage}, not awaiting approval"
            return "", Refusal("DecisionConflict", reason)
        if signal.decision not in ("approve", "reject"):
            return "", Refusal("DecisionInvalid", f"unknown decision {signal.decision!r}")
        if signal.decision == "reject" and not signal.comment.strip():
            return "", Refusal("DecisionInvalid", "a rejection needs a comment")
        if signal.principal_id in policy.roles[signal.role]:
            return "approver", None
        escalation = policy.escalation.get(signal.role, [])
        if signal.role in status.escalated_roles and signal.principal_id in escalation:
            return "escalation", None
        escalated = "" if signal.role in status.escalated_roles else " (not escalated)"
        return "", Refusal(
            "DecisionForbidden",
            f"principal {signal.principal_id} may not decide for {signal.role!r}{escalated}",
        )

    async def record(self, decision: DecisionView) -> None:
        self._apply(decision)
        await self._record_activity(decision)

    def _apply(self, decision: DecisionView) -> None:
        status = self._status
        status.decisions.append(decision)
        if decision.role in status.pending_roles:
            status.pending_roles.remove(decision.role)
        self._on_change()

    async def _record_activity(self, decision: DecisionView) -> None:
        summary = f"{decision.decision} by {decision.role} via {decision.via}"
        await self._activity(
            "record_decision",
            RecordDecision(subject=self._subject, decision=decision),
            None,
            summary,
        )

    def waiting_for(self, now: datetime) -> list[str]:
        """Markdown: each pending role, who may decide for it, and its next deadline."""
        status, policy = self._status, self._subject.policy
        rows = ["| role | who may decide | next deadline |", "|---|---|---|"]
        for role in status.pending_roles:
            who = list(policy.roles.get(role, []))
            if role in status.escalated_roles:
                who += [f"{p} (escalation)" for p in policy.escalation.get(role, [])]
            rows.append(
                f"| `{role}` | {', '.join(who) or '—'} | {self._next_deadline(role, now)} |"
            )
        verbs = {"approve": "approved", "reject": "rejected"}
        decided = [
            f"`{d.role}` {verbs.get(d.decision, d.decision)} ({d.via}, {d.at})"
            for d in status.decisions
        ]
        return ["Waiting for sign-off:", "\n".join(rows)] + (
            [f"Decided so far: {'; '.join(decided)}."] if decided else []
        )

    def _next_deadline(self, role: str, now: datetime) -> str:
        """The first deadline still ahead that concerns the role (silence accepts only for
        client roles)."""
        for kind, field in DEADLINE_FIELDS.items():
            at = self._status.deadlines.get(field)
            if kind == "deemed_warning":
                continue  # a warning of the deemed acceptance, not a deadline of its own
            if kind == "deemed_acceptance" and role not in self._subject.policy.client_roles:
                continue
            if at is not None and datetime.fromisoformat(at) > now:
                return f"{DEADLINE_WORDS[kind]} at {at}"
        return "none"
