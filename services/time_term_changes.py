"""Changing an engagement's time-and-materials terms by change order.

A change order's ``time_and_materials`` names the fields to change; merged over the engagement's
terms they must pass the same checks as at creation (on an engagement without T&M, a change with
a ``rate_card`` adds T&M). ``plan_terms_change`` checks a change when it is proposed and again,
under the locks ``lock_time_terms`` takes, when it is applied; ``apply_terms_change`` applies it.

What the new terms change: the entries booked into periods still taking entries are repriced
from the new rate card (the rate in effect on each entry's date) and advisory rate, and every
close from then on bills under the new caps, floor, retention and approval. A closed period never
changes, nor does one whose timesheet is awaiting sign-off (its signers saw its prices); an entry
dated in such a period and booked later as an adjustment is priced from the new card.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Engagement
from db.time_entries import (
    EntryRowKind,
    PeriodStatus,
    TimeEntry,
    TimeEntryKind,
    TimePeriod,
    TimeTerms,
)
from domain.bounds import MAX_AMOUNT_MINOR
from domain.change_orders import INVALID, Refusal
from domain.delays import delay_amount
from domain.time_billing import Rate, entry_amount, resolve_rate
from services.time_bills import entries_sha256
from services.time_inputs import TimeAndMaterialsIn
from services.time_periods import open_sign_off
from services.time_terms import rates, retention_refusal, save_terms, terms_view

FIELD = "changes.time_and_materials"


@dataclass
class TermsPlan:
    """The merged terms and what they reprice: entry → (rate, amount), period → its new sum."""

    terms: TimeAndMaterialsIn | None = None
    prices: dict[str, tuple[int, int]] = field(default_factory=dict)
    entered: dict[str, int] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)


def lock_time_terms(session: Session, engagement_id: str) -> None:
    """Lock the terms row, then the open periods (posting takes the same locks in that order), so
    no entry is priced or booked from the old terms while a change applies."""
    session.scalars(
        select(TimeTerms).where(TimeTerms.engagement_id == engagement_id).with_for_update()
    ).all()
    session.scalars(
        select(TimePeriod)
        .where(TimePeriod.engagement_id == engagement_id, TimePeriod.status == PeriodStatus.OPEN)
        .order_by(TimePeriod.period)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def plan_terms_change(
    session: Session, engagement: Engagement, change: dict[str, Any]
) -> TermsPlan:
    """The terms ``change`` makes and the repricing they bring, or why they cannot apply."""
    current = terms_view(session, engagement.id)
    if current is None and "rate_card" not in change:
        return _refused(
            "rate_card",
            f"engagement {engagement.id} has no time_and_materials terms: a change adds them "
            "with a rate_card",
        )
    try:
        terms = TimeAndMaterialsIn.model_validate({**(current or {}), **change})
    except ValidationError as exc:
        return TermsPlan(
            refusals=[
                Refusal(INVALID, ".".join([FIELD, *map(str, e["loc"])]), e["msg"])
                for e in exc.errors()
            ]
        )
    refusal = retention_refusal(engagement, terms)
    if refusal is not None:
        return _refused("retention", refusal)
    return _repriced(session, engagement.id, terms)


def apply_terms_change(session: Session, engagement: Engagement, plan: TermsPlan) -> dict[str, Any]:
    """Keep the planned terms and reprice the open periods; returns the audit's account."""
    assert plan.terms is not None and not plan.refusals
    old = terms_view(session, engagement.id)
    save_terms(session, engagement, plan.terms)
    rows = session.scalars(
        select(TimeEntry).where(
            TimeEntry.engagement_id == engagement.id, TimeEntry.period.in_(plan.entered)
        )
    ).all()
    periods = {
        p.period: p
        for p in session.scalars(
            select(TimePeriod).where(
                TimePeriod.engagement_id == engagement.id, TimePeriod.period.in_(plan.entered)
            )
        )
    }
    repriced = []
    for period, entered in sorted(plan.entered.items()):
        changed = [
            r
            for r in rows
            if r.period == period
            and r.id in plan.prices
            and (r.rate_minor, r.amount_minor) != plan.prices[r.id]
        ]
        for row in changed:
            row.rate_minor, row.amount_minor = plan.prices[row.id]
        if changed:
            repriced.append(
                {
                    "period": period,
                    "entry_count": len(changed),
                    "entries_sha256": entries_sha256(changed),
                    "entered_minor": {"old": periods[period].entered_minor, "new": entered},
                }
            )
        periods[period].entered_minor = entered
    session.flush()
    return {"old": old, "new": terms_view(session, engagement.id), "repriced": repriced}


def _refused(name: str, message: str) -> TermsPlan:
    return TermsPlan(refusals=[Refusal(INVALID, f"{FIELD}.{name}", message)])


def _repriced(session: Session, engagement_id: str, terms: TimeAndMaterialsIn) -> TermsPlan:
    """Every entry of the periods still taking entries at the new terms' prices, and each
    period's sum of entries (``TimePeriod.entered_minor``, bounded as at posting); a reversal
    mirrors its entry, and an entry reversed into a frozen period keeps its price."""
    open_periods = [
        p
        for p in session.scalars(
            select(TimePeriod).where(
                TimePeriod.engagement_id == engagement_id, TimePeriod.status == PeriodStatus.OPEN
            )
        )
        if open_sign_off(session, p) is None
    ]
    if not open_periods:
        return TermsPlan(terms=terms)
    names = [p.period for p in open_periods]
    rows = session.scalars(
        select(TimeEntry)
        .where(
            TimeEntry.engagement_id == engagement_id,
            TimeEntry.period.in_(names),
        )
        .order_by(TimeEntry.period, TimeEntry.work_date, TimeEntry.created_at, TimeEntry.id)
    ).all()
    here = {r.id for r in rows}
    reversals = {r.reverses_id: r for r in rows if r.reverses_id is not None}
    # Entries reversed into a period that no longer takes entries keep their price.
    frozen = set(
        session.scalars(
            select(TimeEntry.reverses_id).where(
                TimeEntry.engagement_id == engagement_id,
                TimeEntry.reverses_id.in_(here),
                TimeEntry.period.not_in(names),
            )
        )
    )
    card = rates(terms.model_dump(mode="json")["rate_card"])
    plan = TermsPlan(terms=terms, entered={p.period: p.entered_minor for p in open_periods})
    for row in rows:
        if row.kind == EntryRowKind.REVERSAL or row.id in frozen:
            continue
        rate, amount, missing = _price(terms, card, row)
        if rate is None:
            if row.id not in reversals:  # reversed within the open periods, it bills nothing
                plan.refusals.append(missing)
            continue
        plan.prices[row.id] = (rate, amount)
        plan.entered[row.period] += amount - row.amount_minor
        reversal = reversals.get(row.id)
        if reversal is not None:  # not counted in its period's entered sum
            plan.prices[reversal.id] = (rate, -amount)
    for period, entered in plan.entered.items():
        if entered > MAX_AMOUNT_MINOR:
            plan.refusals.append(
                Refusal(
                    INVALID,
                    f"{FIELD}.rate_card",
                    f"period {period} would bill more than {MAX_AMOUNT_MINOR} at the new rates",
                )
            )
    return plan


def _price(
    terms: TimeAndMaterialsIn, card: list[Rate], row: TimeEntry
) -> tuple[int | None, int, Refusal]:
    """The entry's rate and amount at the new terms (rate None: none), and the refusal to give
    when it has no rate."""
    if row.entry_kind == TimeEntryKind.DEPENDENCY_DELAY:
        rate = terms.advisory_rate_minor
        amount = 0 if rate is None else delay_amount(row.business_days or 0, rate)
        return (
            rate,
            amount,
            Refusal(
                INVALID,
                f"{FIELD}.advisory_rate_minor",
                f"dependency delay {row.external_id!r} in open period {row.period} is billed at "
                "the advisory rate: advisory_rate_minor may not be cleared",
            ),
        )
    rate = resolve_rate(card, row.role, row.person, row.work_date)
    amount = 0 if rate is None else entry_amount(Decimal(row.hours), rate)
    return (
        rate,
        amount,
        Refusal(
            INVALID,
            f"{FIELD}.rate_card",
            f"time entry {row.external_id!r} in open period {row.period} needs a rate for role "
            f"{row.role!r} on {row.work_date}",
        ),
    )
