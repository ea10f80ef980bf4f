"""What a posted entry is worth when it arrives, and the row fields that price it: time worked at
the rate card's rate, or client-caused delay at the engagement's advisory rate."""

from typing import Any

from db.time_entries import TimeEntryKind, TimeTerms
from domain.delays import delay_amount
from domain.time_billing import entry_amount, parse_hours, resolve_rate
from services.errors import invalid
from services.time_inputs import DelayEntryIn, TimeEntryIn
from services.time_terms import rate_card


def priced_entry(terms: TimeTerms, entry: TimeEntryIn | DelayEntryIn) -> dict[str, Any]:
    """The entry's kind, who, role, hours or business days, rate and amount; a 422 when the
    terms have no rate for it."""
    if isinstance(entry, DelayEntryIn):
        return _delay(terms, entry)
    hours = parse_hours(entry.hours)
    rate = resolve_rate(rate_card(terms), entry.role, entry.person, entry.date)
    if rate is None:
        raise invalid(
            "role",
            f"the rate card has no rate for role {entry.role!r} in effect on {entry.date}",
        )
    return {
        "entry_kind": TimeEntryKind.WORK,
        "person": entry.person,
        "role": entry.role,
        "hours": entry.hours,
        "rate_minor": rate,
        "amount_minor": entry_amount(hours, rate),
    }


def _delay(terms: TimeTerms, entry: DelayEntryIn) -> dict[str, Any]:
    """Business days x the advisory rate per business day (kept as the entry's rate); the row's
    person is who caused it and its role the entry kind, its hours 0."""
    rate = terms.advisory_rate_minor
    if rate is None:
        raise invalid(
            "kind",
            "the engagement's time_and_materials terms have no advisory_rate_minor to bill "
            "dependency delay at",
        )
    return {
        "entry_kind": TimeEntryKind.DEPENDENCY_DELAY,
        "person": entry.caused_by,
        "caused_by": entry.caused_by,
        "role": TimeEntryKind.DEPENDENCY_DELAY.value,
        "hours": "0",
        "business_days": entry.business_days,
        "rate_minor": rate,
        "amount_minor": delay_amount(entry.business_days, rate),
    }
