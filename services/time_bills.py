"""What a time-and-materials period bills: its entries in billing order, the domain's bill for
them (credits, voids, delays, caps and floor) and the summary a close records and a view shows.

``activities.time_periods`` closes a period with ``period_bill``; the period view previews the
same computation for a period still open, so what an admin sees is what closing will bill.
"""

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Engagement
from db.time_entries import EntryRowKind, PeriodStatus, TimeEntry, TimePeriod, TimeTerms
from domain.time_billing import EntryKind, PeriodBill, PeriodEntry, bill_period
from services.time_terms import billing_terms


def period_entries(session: Session, engagement_id: str, period: str) -> list[TimeEntry]:
    """The period's rows in billing order: by work date, then as posted."""
    return list(
        session.scalars(
            select(TimeEntry)
            .where(TimeEntry.engagement_id == engagement_id, TimeEntry.period == period)
            .order_by(TimeEntry.work_date, TimeEntry.created_at, TimeEntry.id)
        )
    )


def entries_sha256(entries: list[TimeEntry]) -> str:
    return hashlib.sha256("\n".join(sorted(e.id for e in entries)).encode()).hexdigest()


@dataclass(frozen=True)
class Computed:
    bill: PeriodBill
    billed_before: int


def period_bill(
    session: Session, engagement: Engagement, terms: TimeTerms, period: str, rows: list[TimeEntry]
) -> Computed:
    """What the period bills: an entry reversed in the same period bills nothing, a reversal of
    an entry billed earlier gives back what that entry billed, the rest is work under the caps."""
    here = {e.id for e in rows}
    reversed_here = {e.reverses_id for e in rows if e.reverses_id in here}
    items = []
    for e in rows:
        kind, amount = EntryKind.WORK, e.amount_minor
        if e.id in reversed_here or e.reverses_id in here:
            kind = EntryKind.VOID
        elif e.kind == EntryRowKind.REVERSAL:
            original = session.get_one(TimeEntry, e.reverses_id)
            kind, amount = EntryKind.CREDIT, -(original.billed_minor or 0)
        items.append(
            PeriodEntry(e.id, e.role, Decimal(e.hours), e.rate_minor, amount, kind, e.business_days)
        )
    billed_before = sum(
        (p.summary or {}).get("gross_minor", 0)
        for p in session.scalars(
            select(TimePeriod).where(
                TimePeriod.engagement_id == engagement.id,
                TimePeriod.status == PeriodStatus.CLOSED,
                TimePeriod.period != period,
            )
        )
    )
    terms_ = billing_terms(terms, engagement)
    return Computed(bill_period(items, terms_, billed_before), billed_before)


def bill_summary(computed: Computed, rows: list[TimeEntry]) -> dict[str, Any]:
    bill = computed.bill
    return {
        "entry_count": len(rows),
        "entries_sha256": entries_sha256(rows),
        "hours": str(sum((r.hours for r in bill.roles), Decimal(0))),
        "amount_minor": sum(r.amount_minor for r in bill.roles),
        "capped_minor": bill.capped_minor,
        "true_up_minor": bill.true_up_minor,
        "gross_minor": bill.gross_minor,
        "retention_minor": bill.retention_minor,
        "delay_minor": bill.delay_minor,
        "delay_business_days": bill.delay.business_days if bill.delay else 0,
        "net_minor": bill.gross_minor - bill.retention_minor + bill.delay_minor,
        "billed_before_minor": computed.billed_before,
        "roles": [
            {
                "role": r.role,
                "hours": str(r.hours),
                "entry_count": r.entry_count,
                "amount_minor": r.amount_minor,
                "billed_minor": r.billed_minor,
                "capped_minor": r.capped_minor,
                "rates": [
                    {"rate_minor": rate, "hours": str(hours)} for rate, hours in r.rates.items()
                ],
            }
            for r in bill.roles
        ],
    }
