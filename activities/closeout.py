"""Activities of the engagement close-out: start, stage changes, acceptance, retention release.

Each runs in one transaction and is idempotent under retries (audit dedupe keys, and the escrow
ledger's and invoice lines' unique ``(run_id, kind)``), like the milestone run's.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_, calendar_of, deadlines_for, load_run
from activities.audit import run_audit
from activities.delivery import Notifier
from activities.invoicing import open_draft
from db.audit import append_event
from db.models import Engagement, InvoiceLine, Milestone, RetentionEntry, Run, new_id
from domain.calendar import deadline_after, describe_span, parse_span
from domain.lifecycle import TERMINAL_STAGES
from domain.money import format_minor
from domain.times import iso
from services import notices
from workflows.closeout_contracts import CloseoutStep, RetentionReleased
from workflows.contracts import Deadline

# A close-out whose workflow could not be started is marked so (see api/routes/closeout.py).
NOT_STARTED = "cancelled"
CLOSES_UNACCEPTED = ("rejected", "expired")


def retention_balance(session: Session, engagement_id: str) -> int:
    """The escrow balance: holds are positive, releases negative."""
    total = session.scalar(
        select(func.coalesce(func.sum(RetentionEntry.amount_minor), 0)).where(
            RetentionEntry.engagement_id == engagement_id
        )
    )
    return int(total or 0)


def load_closeout(session: Session, run_id: str) -> Run:
    """The close-out's runs row; one the API gave up on must never act."""
    db_run = load_run(session, run_id)
    if db_run.stage == NOT_STARTED:
        raise ApplicationError(
            f"close-out {run_id} was abandoned before it started",
            type="CloseoutCancelled",
            non_retryable=True,
        )
    return db_run


class CloseoutActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    def all(self) -> list[Callable[..., Any]]:
        """The worker registers these (``plan_deadlines`` and decisions are ApprovalActivities')."""
        return [
            self.open_closeout,
            self.set_closeout_stage,
            self.accept_closeout,
            self.plan_release,
            self.release_retention,
        ]

    @activity.defn(name="open_closeout")
    def open_closeout(self, req: CloseoutStep) -> int:
        """Audit the start with its waivers; return the retention balance to release."""
        closeout = req.closeout
        with self._sessions.begin() as session:
            load_closeout(session, closeout.run_id)
            balance = retention_balance(session, closeout.engagement_id)
            run_audit(
                session,
                closeout,
                actor=closeout.requested_by,
                kind="closeout_started",
                at=at_(req.at),
                data={
                    "waive": [
                        {
                            "milestone": w.milestone_key,
                            "milestone_id": w.milestone_id,
                            "reason": w.reason,
                        }
                        for w in closeout.waivers
                    ],
                    "note": closeout.note,
                    "retention_balance_minor": balance,
                    "release_delay": closeout.release_delay,
                },
                dedupe_key=f"{closeout.run_id}:closeout_started",
            )
        return balance

    @activity.defn(name="set_closeout_stage")
    def set_closeout_stage(self, req: CloseoutStep) -> None:
        """Record the stage; a rejected or expired close-out hands the engagement back."""
        closeout = req.closeout
        assert req.stage is not None
        closing = req.stage in CLOSES_UNACCEPTED
        with self._sessions.begin() as session:
            db_run = load_closeout(session, closeout.run_id)
            if db_run.stage in TERMINAL_STAGES and db_run.stage != req.stage:
                return  # ended meanwhile (cancelled): a late stage change must not revive it
            db_run.stage = req.stage
            if closing:
                db_run.outcome, db_run.outcome_detail = req.outcome, req.detail
                db_run.closed_at = db_run.closed_at or at_(req.at)
                session.execute(
                    update(Engagement)
                    .where(Engagement.id == closeout.engagement_id, Engagement.status == "closing")
                    .values(status="active")
                )
            run_audit(
                session,
                closeout,
                kind="run_closed" if closing else "stage_changed",
                at=at_(req.at),
                data={"stage": req.stage, "outcome": req.outcome, "detail": req.detail},
                dedupe_key=f"{closeout.run_id}:stage:{req.stage}",
            )
            queued = self._requested(session, req) if req.stage == "awaiting_approval" else []
        self._notifier.started(queued)

    def _requested(self, session: Session, req: CloseoutStep) -> list[int]:
        """Both roles are asked to sign the close-out off; the escrow it releases is shown."""
        closeout = req.closeout
        policy = closeout.policy
        waived = ", ".join(f"{w.milestone_key} ({w.reason})" for w in closeout.waivers)
        notice = notices.approval_requested(
            closeout.subject,
            "closeout",
            deadlines_for(policy, at_(req.at)),
            amounts=[("Retention to release", retention_balance(session, closeout.engagement_id))],
            detail="; ".join(
                part for part in (closeout.note, f"Waived: {waived}" if waived else None) if part
            )
            or None,
        )
        return self._notifier.queue(session, notice, notices.recipients(policy.roles))

    @activity.defn(name="accept_closeout")
    def accept_closeout(self, req: CloseoutStep) -> None:
        """Apply the waivers and close the engagement: it takes no more triggers."""
        closeout, at = req.closeout, at_(req.at)
        with self._sessions.begin() as session:
            db_run = load_closeout(session, closeout.run_id)
            for waiver in closeout.waivers:
                milestone = session.get_one(Milestone, waiver.milestone_id)
                if milestone.status == "waived":
                    continue  # a retry: waived and audited already
                append_event(
                    session,
                    engagement_id=closeout.engagement_id,
                    milestone_id=milestone.id,
                    run_id=closeout.run_id,
                    actor=closeout.requested_by,
                    kind="milestone_waived",
                    at=at,
                    data={
                        "milestone": milestone.key,
                        "reason": waiver.reason,
                        "previous_status": milestone.status,
                    },
                    dedupe_key=f"{closeout.run_id}:waived:{milestone.id}",
                )
                milestone.status = "waived"
            engagement = session.get_one(Engagement, closeout.engagement_id)
            engagement.status = "closed"
            db_run.stage = "accepted"
            run_audit(
                session,
                closeout,
                kind="closeout_accepted",
                at=at,
                data={"waived": [w.milestone_key for w in closeout.waivers]},
                dedupe_key=f"{closeout.run_id}:closeout_accepted",
            )

    @activity.defn(name="plan_release")
    def plan_release(self, req: CloseoutStep) -> Deadline:
        """When the warranty ends, on the engagement's business calendar."""
        closeout = req.closeout
        span = parse_span(closeout.release_delay)
        assert span is not None
        at = deadline_after(at_(req.at), span, calendar_of(closeout.policy.calendar))
        return Deadline(
            kind="release", at=iso(at), label=f"warranty period ({describe_span(span)})"
        )

    @activity.defn(name="release_retention")
    def release_retention(self, req: CloseoutStep) -> RetentionReleased:
        """Release the whole balance as one line on the customer's open draft, once.

        A zero balance releases nothing (no line, no ledger entry) but still closes the run.
        """
        closeout, at = req.closeout, at_(req.at)
        with self._sessions.begin() as session:
            db_run = load_closeout(session, closeout.run_id)
            released = session.scalar(
                select(RetentionEntry).where(
                    RetentionEntry.run_id == closeout.run_id, RetentionEntry.kind == "released"
                )
            )
            if released is not None:  # a retry after the release committed
                return RetentionReleased(-released.amount_minor, db_run.invoice_id)
            balance = retention_balance(session, closeout.engagement_id)
            invoice_id = line_id = None
            if balance > 0:
                invoice = open_draft(session, closeout.customer_id, closeout.currency, balance)
                line = InvoiceLine(
                    id=new_id("lin"),
                    invoice_id=invoice.id,
                    kind="retention_release",
                    description=f"Retention released on close-out of {closeout.engagement_name}",
                    amount_minor=balance,
                    milestone_id=None,
                    run_id=closeout.run_id,
                    evidence=[],
                    details={
                        "engagement_id": closeout.engagement_id,
                        "release_delay": closeout.release_delay,
                    },
                )
                session.add(line)
                invoice.total_minor += balance
                session.add(
                    RetentionEntry(
                        engagement_id=closeout.engagement_id,
                        milestone_id=None,
                        run_id=closeout.run_id,
                        kind="released",
                        amount_minor=-balance,
                        at=at,
                    )
                )
                invoice_id, line_id = invoice.id, line.id
            else:
                balance = 0
            db_run.stage, db_run.outcome, db_run.closed_at = "released", "released", at
            db_run.invoice_id = invoice_id
            run_audit(
                session,
                closeout,
                kind="retention_released",
                at=at,
                data={
                    "amount_minor": balance,
                    "currency": closeout.currency,
                    "amount": format_minor(balance, closeout.currency),
                    "invoice_id": invoice_id,
                    "line_id": line_id,
                },
                dedupe_key=f"{closeout.run_id}:retention_released",
            )
        return RetentionReleased(balance, invoice_id)
