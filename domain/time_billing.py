"""Time and materials: hours as decimal strings, rates from a rate card, and what a period bills
under its caps and floor.

Stdlib only, like the rest of ``domain``. Amounts are integer minor units; an entry's amount is
ONE rounding (``domain.money.round_half_up``) of its exact hours x rate.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, Inexact, localcontext
from enum import StrEnum

from domain.money import percent_of, round_half_up

MAX_HOURS_PER_ENTRY = Decimal(24)
_HOURS = re.compile(r"-?[0-9]{1,2}(?:\.[0-9]{1,2})?")
_PRECISION = 50


class InvalidHours(ValueError):
    """Hours that are not a decimal string with at most 2 decimals in (0, 24]."""


class EntryKind(StrEnum):
    WORK = "work"  # billed under the caps, in order
    CREDIT = "credit"  # reverses an entry billed in an earlier period: gives back what it billed
    VOID = "void"  # an entry and its reversal in the same period: both bill nothing


def parse_hours(text: object) -> Decimal:
    """Hours worked as a decimal string ("7.5"): more than 0, at most 24, at most 2 decimals."""
    if not isinstance(text, str) or not _HOURS.fullmatch(text):
        raise InvalidHours(
            f'hours must be a decimal string with at most 2 decimals, like "7.5", got {text!r}'
        )
    hours = Decimal(text)
    if hours <= 0:
        raise InvalidHours(f"hours must be more than 0, got {text!r}")
    if hours > MAX_HOURS_PER_ENTRY:
        raise InvalidHours(f"one entry has at most {MAX_HOURS_PER_ENTRY} hours, got {text!r}")
    return hours


def entry_amount(hours: Decimal, rate_minor: int) -> int:
    """hours x rate in minor units, rounded once, half away from zero (a reversal mirrors)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.traps[Inexact] = True
        exact = hours * Decimal(rate_minor)
    return round_half_up(exact)


@dataclass(frozen=True)
class Rate:
    """One rate-card row: a role's hourly rate from ``effective_from`` (None: from the start),
    with per-person overrides. A later row for the role replaces the earlier one whole."""

    role: str
    rate_minor: int
    effective_from: date | None = None
    people: dict[str, int] = field(default_factory=dict)


def resolve_rate(card: Sequence[Rate], role: str, person: str, on: date) -> int | None:
    """The rate for ``person`` in ``role`` on ``on``: the role's row in effect that day (the
    latest ``effective_from`` not after it), its person override before its role rate. None when
    no row is in effect."""
    in_effect = [
        r for r in card if r.role == role and (r.effective_from is None or r.effective_from <= on)
    ]
    if not in_effect:
        return None
    row = max(in_effect, key=lambda r: r.effective_from or date.min)
    return row.people.get(person, row.rate_minor)


def split_under_cap(amounts: Sequence[int], room: int | None) -> list[tuple[int, int]]:
    """(billed, capped) for each amount, in order: the first amounts fill ``room`` and the rest
    is recorded but not billed. ``room`` None: no cap."""
    parts = []
    left = room
    for amount in amounts:
        if amount < 0:
            raise ValueError(f"only work is capped, got an amount of {amount}")
        billed = amount if left is None else min(amount, max(left, 0))
        if left is not None:
            left -= billed
        parts.append((billed, amount - billed))
    return parts


def true_up(net_minor: int, minimum_minor: int | None, room: int | None) -> int:
    """What tops a period's net up to its floor (0 when at or above it), within ``room``."""
    if minimum_minor is None or net_minor >= minimum_minor:
        return 0
    short = minimum_minor - net_minor
    return short if room is None else max(0, min(short, room))


@dataclass(frozen=True)
class PeriodEntry:
    id: str
    role: str
    hours: Decimal
    rate_minor: int
    amount_minor: int  # WORK: hours x rate; CREDIT: minus what the reversed entry billed
    kind: EntryKind = EntryKind.WORK
    # A dependency-delay entry's business days (negative on its reversal); None for time worked.
    # Delays bill at the advisory rate outside the caps, the floor and retention.
    delay_days: int | None = None


@dataclass(frozen=True)
class Terms:
    period_cap_minor: int | None = None
    not_to_exceed_minor: int | None = None
    minimum_minor: int | None = None
    retention_percent: Decimal = Decimal(0)  # 0 when the engagement keeps none on T&M


@dataclass(frozen=True)
class RoleLine:
    role: str
    hours: Decimal
    entry_count: int
    amount_minor: int  # before caps
    billed_minor: int
    capped_minor: int
    rates: dict[int, Decimal]  # rate → hours at it


@dataclass(frozen=True)
class DelayLine:
    business_days: int
    entry_count: int
    amount_minor: int  # what it bills: never capped
    rates: dict[int, int]  # advisory rate → business days at it


@dataclass(frozen=True)
class PeriodBill:
    roles: list[RoleLine]
    entries: dict[str, tuple[int, int]]  # entry id → (billed, capped)
    true_up_minor: int
    retention_minor: int
    delay: DelayLine | None = None

    @property
    def delay_minor(self) -> int:
        return self.delay.amount_minor if self.delay is not None else 0

    @property
    def gross_minor(self) -> int:
        return sum(r.billed_minor for r in self.roles) + self.true_up_minor

    @property
    def capped_minor(self) -> int:
        return sum(r.capped_minor for r in self.roles)


def bill_delays(entries: Sequence[PeriodEntry]) -> DelayLine | None:
    """The period's dependency delays as one line: each bills its amount in full (a credit gives
    back what its entry billed, an entry reversed within the period nets to nothing)."""
    if not entries:
        return None
    rates: dict[int, int] = {}
    for e in entries:
        rates[e.rate_minor] = rates.get(e.rate_minor, 0) + (e.delay_days or 0)
    return DelayLine(
        business_days=sum(e.delay_days or 0 for e in entries),
        entry_count=len(entries),
        amount_minor=sum(e.amount_minor for e in entries if e.kind != EntryKind.VOID),
        rates={rate: days for rate, days in rates.items() if days},
    )


def bill_period(entries: Sequence[PeriodEntry], terms: Terms, billed_before: int) -> PeriodBill:
    """What one period bills: credits first, then work in the order given up to the tighter of
    the period cap and what the engagement's not-to-exceed leaves (credits widen it), then the
    floor's true-up and the retention withheld on the whole. Dependency delays bill beside all
    that, in full (``bill_delays``)."""
    delays = [e for e in entries if e.delay_days is not None]
    entries = [e for e in entries if e.delay_days is None]
    credits = sum(e.amount_minor for e in entries if e.kind == EntryKind.CREDIT)
    rooms = [terms.period_cap_minor]
    if terms.not_to_exceed_minor is not None:
        rooms.append(terms.not_to_exceed_minor - billed_before - credits)
    room = min((r for r in rooms if r is not None), default=None)
    work = [e for e in entries if e.kind == EntryKind.WORK]
    capped = split_under_cap([e.amount_minor for e in work], room)
    split = dict(zip([e.id for e in work], capped, strict=True))
    parts = {
        e.id: split.get(e.id, (e.amount_minor if e.kind == EntryKind.CREDIT else 0, 0))
        for e in entries
    }
    roles = []
    for role in dict.fromkeys(e.role for e in entries):
        mine = [e for e in entries if e.role == role]
        rates: dict[int, Decimal] = {}
        for e in mine:
            rates[e.rate_minor] = rates.get(e.rate_minor, Decimal(0)) + e.hours
        roles.append(
            RoleLine(
                role=role,
                hours=sum((e.hours for e in mine), Decimal(0)),
                entry_count=len(mine),
                amount_minor=sum(e.amount_minor for e in mine if e.kind != EntryKind.VOID),
                billed_minor=sum(parts[e.id][0] for e in mine),
                capped_minor=sum(parts[e.id][1] for e in mine),
                rates={rate: hours for rate, hours in rates.items() if hours},
            )
        )
    net = sum(r.billed_minor for r in roles)
    nte_room = (
        None
        if terms.not_to_exceed_minor is None
        else terms.not_to_exceed_minor - billed_before - net
    )
    topped = true_up(net, terms.minimum_minor, nte_room)
    gross = net + topped
    retention = percent_of(gross, terms.retention_percent) if gross > 0 else 0
    for e in delays:
        parts[e.id] = (0 if e.kind == EntryKind.VOID else e.amount_minor, 0)
    return PeriodBill(roles, parts, topped, retention, bill_delays(delays))
