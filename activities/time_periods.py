"""Closing a time-and-materials period in one transaction: its lines on the customer's draft
(one ``time_and_materials`` line per role, a ``minimum_true_up``, retention withheld, a
``dependency_delay`` line for client-caused delay at the advisory rate), every
entry's billed and capped parts, the period closed, the audit event with the entries' hash, and
the notices of a cap 80 % or wholly billed (``services.tm_cap_notices``).

Idempotent: the period row is locked first and a closed period answers what its close recorded;
the lines' (run_id, kind) keys make a second posting impossible anyway.
"""

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.delivery import Notifier
from activities.invoicing import open_draft
from db.audit import append_event
from db.models import Engagement, InvoiceLine, RetentionEntry, new_id
from db.time_entries import PeriodStatus, TimeTerms
from domain.money import format_minor
from domain.time_billing import DelayLine, RoleLine
from services.time_bills import bill_summary, period_bill, period_entries
from services.time_periods import lock_period, period_id, periods_due
from services.time_sign_offs import request_sign_off
from services.tm_cap_notices import queue_cap_notices
from workflows.time_period import ClosePeriodInput, ClosePeriodRequest, CloseStart, PeriodClosed
from workflows.time_period_schedule import DueRequest


class TimePeriodActivities:
    def __init__(self, sessions: sessionmaker[Session], notifier: Notifier | None = None) -> None:
        self._sessions, self._notifier = sessions, notifier or Notifier()

    def all(self) -> list:
        return [self.begin_time_period_close, self.close_time_period, self.time_periods_due]

    @activity.defn(name="time_periods_due")
    def time_periods_due(self, req: DueRequest) -> list[ClosePeriodInput]:
        with self._sessions() as session:
            return periods_due(session, datetime.fromisoformat(req.at), req.grace_days)

    @activity.defn(name="begin_time_period_close")
    def begin_time_period_close(self, req: ClosePeriodRequest) -> CloseStart:
        """With ``approval: true``, record the timesheet's sign-off (or answer the open one);
        otherwise (or once closed) the close bills right away."""
        with self._sessions() as session:
            row = lock_period(session, req.engagement_id, req.period)
            terms = session.get(TimeTerms, req.engagement_id)
            if row.status == PeriodStatus.CLOSED or terms is None or not terms.approval:
                session.rollback()
                return CloseStart()
            engagement = session.get_one(Engagement, req.engagement_id)
            at = datetime.fromisoformat(req.at)
            sheet = request_sign_off(session, engagement, terms, row, req.actor, at)
            session.commit()
        return CloseStart(sheet)

    @activity.defn(name="close_time_period")
    def close_time_period(self, req: ClosePeriodRequest) -> PeriodClosed:
        with self._sessions() as session:
            closed, notices = close_period(session, req)
            session.commit()
        self._notifier.started(notices)
        return closed


def close_period(session: Session, req: ClosePeriodRequest) -> tuple[PeriodClosed, list[int]]:
    """The close, and the ids of the notices it wrote (none when the period was closed)."""
    row = lock_period(session, req.engagement_id, req.period)
    if row.status == PeriodStatus.CLOSED:
        assert row.summary is not None
        return _result(req, row.invoice_id, row.summary, already_closed=True), []
    engagement = session.get_one(Engagement, req.engagement_id)
    terms = session.get(TimeTerms, engagement.id)
    if terms is None:
        raise ValueError(f"engagement {engagement.id} has no time_and_materials terms")
    entries = period_entries(session, engagement.id, req.period)
    computed = period_bill(session, engagement, terms, req.period, entries)
    bill, pid, at = (
        computed.bill,
        period_id(engagement.id, req.period),
        datetime.fromisoformat(req.at),
    )
    for entry in entries:
        entry.billed_minor, entry.capped_minor = bill.entries[entry.id]
    lines = [_role_line(pid, req.period, role, engagement.currency) for role in bill.roles]
    if bill.true_up_minor:
        lines.append(
            InvoiceLine(
                id=new_id("lin"),
                kind="minimum_true_up",
                run_id=pid,
                amount_minor=bill.true_up_minor,
                description=f"Minimum for {req.period}: topped up to "
                f"{format_minor(bill.gross_minor, engagement.currency)}",
                details={"period": req.period, "minimum_minor": terms.minimum_minor},
            )
        )
    if bill.delay is not None:
        lines.append(_delay_line(pid, req.period, bill.delay, engagement.currency))
    if bill.retention_minor:
        lines.append(
            InvoiceLine(
                id=new_id("lin"),
                kind="retention_withheld",
                run_id=pid,
                amount_minor=-bill.retention_minor,
                description=f"Retention withheld ({engagement.retention_percent}%) on time and "
                f"materials, {req.period}",
                details={"period": req.period, "percent": engagement.retention_percent},
            )
        )
        session.add(
            RetentionEntry(
                engagement_id=engagement.id,
                milestone_id=None,
                run_id=pid,
                kind="held",
                amount_minor=bill.retention_minor,
                at=at,
            )
        )
    invoice_id = None
    if lines:
        adding = sum(line.amount_minor for line in lines)
        invoice = open_draft(session, engagement.customer_id, engagement.currency, adding)
        for line in lines:
            line.invoice_id = invoice.id
        session.add_all(lines)
        invoice.total_minor += adding
        invoice_id = invoice.id
    summary = {**bill_summary(computed, entries), "lines": [line.id for line in lines]}
    row.status, row.closed_at, row.closed_by = PeriodStatus.CLOSED, at, req.actor
    row.invoice_id, row.summary = invoice_id, summary
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=req.actor,
        kind="time_period_closed",
        run_id=pid,
        at=at,
        data={
            "period": req.period,
            "invoice_id": invoice_id,
            "currency": engagement.currency,
            **{k: v for k, v in summary.items() if k != "roles"},
        },
        dedupe_key=f"{pid}:closed",
    )
    notices = queue_cap_notices(
        session,
        engagement,
        terms,
        req.period,
        billed_before_minor=computed.billed_before,
        period_minor=bill.gross_minor,
        period_work_minor=bill.gross_minor - bill.true_up_minor,
    )
    return _result(req, invoice_id, summary), notices


def _role_line(pid: str, period: str, role: RoleLine, currency: str) -> InvoiceLine:
    rates = ", ".join(
        f"{hours} h x {format_minor(rate, currency)}" for rate, hours in role.rates.items()
    )
    capped = f"; {format_minor(role.capped_minor, currency)} over the cap not billed"
    return InvoiceLine(
        id=new_id("lin"),
        kind="time_and_materials",
        run_id=f"{pid}:{role.role}",
        amount_minor=role.billed_minor,
        description=f"Time and materials, {role.role}, {period}: {rates or '0 h'}"
        + (capped if role.capped_minor else ""),
        details={
            "period": period,
            "role": role.role,
            "hours": str(role.hours),
            "entry_count": role.entry_count,
            "rates": [{"rate_minor": r, "hours": str(h)} for r, h in role.rates.items()],
            **({"rate_minor": next(iter(role.rates))} if len(role.rates) == 1 else {}),
            "amount_minor": role.amount_minor,
            "capped_minor": role.capped_minor,
            "billed_minor": role.billed_minor,
        },
    )


def _delay_line(pid: str, period: str, delay: DelayLine, currency: str) -> InvoiceLine:
    rates = ", ".join(
        f"{days} business day{'s' if abs(days) != 1 else ''} x {format_minor(rate, currency)}"
        for rate, days in delay.rates.items()
    )
    return InvoiceLine(
        id=new_id("lin"),
        kind="dependency_delay",
        run_id=pid,
        amount_minor=delay.amount_minor,
        description=f"Client-caused delay at the advisory rate, {period}: {rates or '0 days'}",
        details={
            "period": period,
            "business_days": delay.business_days,
            "entry_count": delay.entry_count,
            "rates": [{"rate_minor": r, "business_days": d} for r, d in delay.rates.items()],
            **({"rate_minor": next(iter(delay.rates))} if len(delay.rates) == 1 else {}),
            "amount_minor": delay.amount_minor,
        },
    )


def _result(
    req: ClosePeriodRequest, invoice_id: str | None, summary: dict, already_closed: bool = False
) -> PeriodClosed:
    return PeriodClosed(
        engagement_id=req.engagement_id,
        period=req.period,
        invoice_id=invoice_id,
        entry_count=summary["entry_count"],
        entries_sha256=summary["entries_sha256"],
        gross_minor=summary["gross_minor"],
        capped_minor=summary["capped_minor"],
        already_closed=already_closed,
    )
