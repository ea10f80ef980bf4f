"""Billing periods of time and materials: calendar months (in the engagement calendar's time zone),
which are due to close, and how a period and its entries are shown (what one bills is
``services.time_bills``'s).
"""

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from db.models import Engagement, InvoiceLine, Run
from db.time_entries import PeriodStatus, TimeEntry, TimePeriod, TimeTerms
from domain.lifecycle import TERMINAL_STAGES
from domain.times import iso
from services.errors import Problem, invalid
from services.time_bills import bill_summary, period_bill, period_entries
from workflows.time_period import ClosePeriodInput, CloseTimePeriod

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def parse_period(text: str) -> str:
    """A ``YYYY-MM`` period, or a 422."""
    if not _PERIOD.fullmatch(text) or text < "1970-01":
        raise invalid("period", f"a period is a month written YYYY-MM, like 2026-11, not {text!r}")
    return text


PERIOD_PREFIX = "time-period:"


def period_id(engagement_id: str, period: str) -> str:
    """The close workflow's id and its lines' run id: ``time-period:<engagement>:<YYYY-MM>``."""
    return f"{PERIOD_PREFIX}{engagement_id}:{period}"


def period_engagement(run_id: str | None) -> str | None:
    """The engagement a T&M line bills, read from its run id (``period_id``, maybe ``:<role>``)."""
    if not run_id or not run_id.startswith(PERIOD_PREFIX):
        return None
    return run_id.removeprefix(PERIOD_PREFIX).split(":", 1)[0]


def local_date(engagement: Engagement, moment: datetime) -> date:
    """The date at ``moment`` in the engagement calendar's time zone."""
    zone = (engagement.approval.get("calendar") or {}).get("timezone") or "UTC"
    return moment.astimezone(ZoneInfo(zone)).date()


def current_month(engagement: Engagement, now: datetime) -> str:
    return month_of(local_date(engagement, now))


def periods_due(session: Session, now: datetime, grace_days: int) -> list[ClosePeriodInput]:
    """Last month of every T&M engagement not closed, once its calendar is ``grace_days`` days
    into this month, if that month is still open and the engagement existed then."""
    due = []
    engagements = session.scalars(
        select(Engagement)
        .join(TimeTerms, TimeTerms.engagement_id == Engagement.id)
        .where(Engagement.status != "closed")
        .order_by(Engagement.created_at, Engagement.id)
    )
    for engagement in engagements:
        today = local_date(engagement, now)
        last = previous_month(month_of(today))
        if (
            today.day <= grace_days
            or month_of(local_date(engagement, engagement.created_at)) > last
        ):
            continue
        period = session.get(TimePeriod, (engagement.id, last))
        # A period sent for sign-off is closed again only by an admin (after a rejection).
        if period is None or (
            period.status != PeriodStatus.CLOSED and period.sign_off_run_id is None
        ):
            due.append(ClosePeriodInput(engagement.id, last, "schedule"))
    return due


def check_closable(engagement: Engagement, period: str, now: datetime) -> None:
    if period > current_month(engagement, now):
        raise Problem(
            409,
            "period-not-started",
            "Period not started",
            f"Period {period} has not started yet in the engagement's time zone.",
        )


def lock_period(session: Session, engagement_id: str, period: str) -> TimePeriod:
    """The period's row, created on first use and locked until the caller commits."""
    query = (
        select(TimePeriod)
        .where(TimePeriod.engagement_id == engagement_id, TimePeriod.period == period)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.scalars(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = TimePeriod(
                engagement_id=engagement_id,
                period=period,
                status=PeriodStatus.OPEN,
                entered_minor=0,
            )
            session.add(row)
        return row
    except IntegrityError:  # another request created it first
        return session.scalars(query).one()


def period_view(session: Session, engagement: Engagement, period: str) -> dict[str, Any]:
    """The period: its entries, totals and, once closed, its invoice lines; an open period shows
    what closing it now would bill (``preview``)."""
    terms = session.get(TimeTerms, engagement.id)
    if terms is None:
        raise Problem(
            409,
            "not-time-and-materials",
            "No time-and-materials terms",
            f"Engagement {engagement.id} has no time_and_materials terms.",
        )
    row = session.get(TimePeriod, (engagement.id, period))
    rows = period_entries(session, engagement.id, period)
    closed = row is not None and row.status == PeriodStatus.CLOSED
    if closed:
        assert row is not None and row.summary is not None
        summary, parts = row.summary, {e.id: (e.billed_minor, e.capped_minor) for e in rows}
    else:
        computed = period_bill(session, engagement, terms, period, rows)
        summary, parts = bill_summary(computed, rows), computed.bill.entries
    pid = period_id(engagement.id, period)
    lines = session.scalars(
        select(InvoiceLine)
        .where(or_(InvoiceLine.run_id == pid, InvoiceLine.run_id.startswith(f"{pid}:")))
        .order_by(InvoiceLine.created_at, InvoiceLine.kind, InvoiceLine.run_id)
    ).all()
    originals = _originals(session, rows)
    return {
        "engagement_id": engagement.id,
        "period": period,
        "status": _status(session, row),
        "sign_off_run_id": row.sign_off_run_id if row is not None else None,
        "preview": not closed,
        "workflow_id": pid,
        "closed_at": iso(row.closed_at) if row is not None else None,
        "closed_by": row.closed_by if row is not None else None,
        "invoice_id": row.invoice_id if row is not None else None,
        **summary,
        "entries": [
            {
                **entry_view(e, originals.get(e.reverses_id or "")),
                "billed_minor": parts.get(e.id, (None, None))[0],
                "capped_minor": parts.get(e.id, (None, None))[1],
            }
            for e in rows
        ],
        "lines": [
            {
                "id": line.id,
                "invoice_id": line.invoice_id,
                "kind": line.kind,
                "description": line.description,
                "amount_minor": line.amount_minor,
                "details": line.details,
            }
            for line in lines
        ],
    }


def open_sign_off(session: Session, period: TimePeriod) -> Run | None:
    """The period's timesheet sign-off run while it is open (neither decided nor ended)."""
    if period.sign_off_run_id is None:
        return None
    run = session.get(Run, period.sign_off_run_id)
    return run if run is not None and run.stage not in TERMINAL_STAGES else None


def _status(session: Session, row: TimePeriod | None) -> str:
    """open, awaiting_approval (its timesheet's sign-off is open) or closed."""
    if row is not None and row.status == PeriodStatus.CLOSED:
        return PeriodStatus.CLOSED
    if row is not None and open_sign_off(session, row) is not None:
        return "awaiting_approval"
    return PeriodStatus.OPEN


def _originals(session: Session, rows: list[TimeEntry]) -> dict[str, TimeEntry]:
    ids = [e.reverses_id for e in rows if e.reverses_id]
    if not ids:
        return {}
    return {e.id: e for e in session.scalars(select(TimeEntry).where(TimeEntry.id.in_(ids)))}


def entry_view(entry: TimeEntry, reverses: TimeEntry | None = None) -> dict[str, Any]:
    """An entry as posted (fields that never change, so a replay answers the same)."""
    return {
        "id": entry.id,
        "external_id": entry.external_id,
        "kind": entry.kind,
        "reverses": reverses.external_id if reverses is not None else None,
        "correction_of": (entry.body or {}).get("correction_of"),
        "person": entry.person,
        "role": entry.role,
        "date": entry.work_date.isoformat(),
        "hours": entry.hours,
        "rate_minor": entry.rate_minor,
        "amount_minor": entry.amount_minor,
        "period": entry.period,
        "adjustment": entry.adjustment,
        "description": entry.description,
        "milestone": entry.milestone_key,
        "entry_kind": entry.entry_kind,
        "caused_by": entry.caused_by,
        "business_days": entry.business_days,
        "created_at": iso(entry.created_at),
    }


async def start_close(client: Client, task_queue: str, inp: ClosePeriodInput) -> None:
    """Start the period's close; while one runs, this joins it (closing twice changes nothing)."""
    await client.start_workflow(
        CloseTimePeriod.run,
        inp,
        id=period_id(inp.engagement_id, inp.period),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"close time period {inp.period} of {inp.engagement_id}",
    )
