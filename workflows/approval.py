"""Dual sign-off, shared by milestone runs, close-outs and change orders.

Decisions arrive as ``decide`` signals and are queued by the workflow; this class validates them
against the frozen policy and records them, while the reminder → escalation → deemed acceptance →
expiry timers run. Deterministic: it only waits, and calls activities through the workflow.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activity_calls import ActivityCall
    from workflows.contracts import (
        Deadline,
        DecisionSignal,
        DecisionView,
        Notify,
        RecordDecision,
        RecordIgnoredDecision,
        RunStatus,
        Subject,
    )


@dataclass
class Verdict:
    outcome: str  # approved | rejected | expired
    detail: str = ""


class Approval:
    def __init__(
        self,
        subject: Subject,
        status: RunStatus,
        inbox: list[tuple[str, DecisionSignal]],
        activity: ActivityCall,
    ) -> None:
        self._subject = subject
        self._status = status
        self._inbox = inbox
        self._activity = activity
        self._ignored = 0

    async def collect(self, deadlines: list[Deadline]) -> Verdict:
        """Wait until every role approved, one rejected, or the expiry deadline passed."""
        status = self._status
        status.pending_roles = list(self._subject.policy.roles)
        timers = sorted(deadlines, key=lambda d: d.at)
        while True:
            await self._drain_inbox()
            rejection = next((d for d in status.decisions if d.decision == "reject"), None)
            if rejection is not None:
                return Verdict("rejected", f"rejected by {rejection.role}: {rejection.comment}")
            if not status.pending_roles:
                return Verdict("approved")
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
                    pass  # the deadline passed: act on it below
            timers.pop(0)
            if timer.kind == "expiry":
                pending = ", ".join(status.pending_roles)
                return Verdict("expired", f"no decision from {pending} ({timer.label})")
            await self._on_deadline(timer)

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
        elif timer.kind == "deemed_acceptance":
            client_roles = self._subject.policy.client_roles
            for role in [r for r in status.pending_roles if r in client_roles]:
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

    async def _drain_inbox(self) -> None:
        while self._inbox:
            at, signal = self._inbox.pop(0)
            via, reason = self._validate(signal)
            if reason is not None:
                await self._record_ignored(at, signal, reason)
                continue
            await self.record(
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

    async def ignore_inbox(self) -> None:
        """Decisions that arrive once approval is over are audited, never acted on."""
        while self._inbox:
            at, signal = self._inbox.pop(0)
            stage = self._status.stage
            await self._record_ignored(at, signal, f"run is {stage}, not awaiting approval")

    async def _record_ignored(self, at: str, signal: DecisionSignal, reason: str) -> None:
        self._ignored += 1
        await self._activity(
            "record_ignored_decision",
            RecordIgnoredDecision(
                subject=self._subject, signal=signal, reason=reason, at=at, sequence=self._ignored
            ),
            None,
            f"ignored decision for {signal.role}: {reason}",
        )

    def _validate(self, signal: DecisionSignal) -> tuple[str, str | None]:
        """The API checked already; the workflow checks again against its own snapshot."""
        status = self._status
        policy = self._subject.policy
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
        escalation = policy.escalation.get(signal.role, [])
        if signal.role in status.escalated_roles and signal.principal_id in escalation:
            return "escalation", None
        return "", f"principal {signal.principal_id} may not decide for {signal.role!r}"

    async def record(self, decision: DecisionView) -> None:
        status = self._status
        status.decisions.append(decision)
        if decision.role in status.pending_roles:
            status.pending_roles.remove(decision.role)
        summary = f"{decision.decision} by {decision.role} via {decision.via}"
        await self._activity(
            "record_decision",
            RecordDecision(subject=self._subject, decision=decision),
            None,
            summary,
        )


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
