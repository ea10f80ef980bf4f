"""Pricing one encounter from a payer's fee schedule: which schedule version is in effect on the
service date, and unit amount x units x each modifier's percent, rounded once.

Stdlib only (through domain.money): pure rules, unit-tested on their own.
"""

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, Inexact, localcontext
from typing import Final

from domain.bounds import MAX_AMOUNT_MINOR, check_amount
from domain.money import round_half_up

# CPT (99213, 0001F) and HCPCS level II (G0439) codes: five letters or digits.
PROCEDURE_CODE: Final = re.compile(r"[A-Z0-9]{5}")
# CPT and HCPCS modifiers (26, TC, LT, 59): two letters or digits.
MODIFIER_CODE: Final = re.compile(r"[A-Z0-9]{2}")
MAX_MODIFIERS: Final = 4  # a claim line carries at most four modifiers
MAX_UNITS: Final = 9_999
MAX_FEE_ENTRIES: Final = 10_000
# A modifier may raise a fee (bilateral procedure: 150 %) as well as lower it (26: 40 %).
MAX_MODIFIER_PERCENT: Final = Decimal(1000)
_PERCENT = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4})?")
_HUNDRED = Decimal(100)


class NotPriceable(ValueError):
    """An encounter the schedule entry cannot price; ``slug`` names the reason for clients."""

    slug = "not-priceable"


class UnitsNotAllowed(NotPriceable):
    slug = "units-not-allowed"


class UnknownModifier(NotPriceable):
    slug = "unknown-modifier"


class AmountOutOfBounds(NotPriceable):
    slug = "amount-out-of-bounds"


def parse_modifier_percent(text: str) -> Decimal:
    """A modifier's percent of the fee: a decimal string above 0 and at most 1000 ("40",
    "150", "62.5"); at most four decimals, so the product of four stays exact."""
    if not isinstance(text, str) or not _PERCENT.fullmatch(text):
        raise ValueError(
            f"a modifier percent is a decimal string like '40' or '62.5', got {text!r}"
        )
    value = Decimal(text)
    if not 0 < value <= MAX_MODIFIER_PERCENT:
        raise ValueError(f"a modifier percent is above 0 and at most 1000, got {text!r}")
    return value


def max_units(rule: bool | int) -> int:
    """How many units an encounter of this code may bill: ``False`` one (per visit), ``True``
    up to MAX_UNITS (per unit, e.g. per 15 minutes), an int up to that many."""
    if rule is True:
        return MAX_UNITS
    if rule is False:
        return 1
    if not 1 <= rule <= MAX_UNITS:
        raise ValueError(f"a units limit is between 1 and {MAX_UNITS}, got {rule!r}")
    return rule


@dataclass(frozen=True)
class FeeEntry:
    """One procedure code in one schedule version."""

    amount_minor: int  # per unit
    units: bool | int = False
    modifiers: Mapping[str, Decimal] | None = None


@dataclass(frozen=True)
class Priced:
    unit_amount_minor: int
    units: int
    modifiers: tuple[tuple[str, str], ...]  # (code, percent) in the order given
    amount_minor: int


def price(entry: FeeEntry, units: int, modifiers: Sequence[str]) -> Priced:
    """unit amount * units * the product of (percent / 100), rounded half up once, at the end."""
    allowed = max_units(entry.units)
    if not 1 <= units <= allowed:
        per = "one unit" if allowed == 1 else f"at most {allowed} units"
        raise UnitsNotAllowed(f"this procedure code bills {per}, not {units}")
    if len(set(modifiers)) != len(modifiers):
        raise UnknownModifier(f"a modifier is repeated in {list(modifiers)}")
    known = entry.modifiers or {}
    applied = []
    for code in modifiers:
        if code not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UnknownModifier(
                f"modifier {code!r} has no percent in the fee schedule (it lists: {listed})"
            )
        applied.append((code, known[code]))
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.traps[Inexact] = True
        exact = Decimal(entry.amount_minor) * units
        for _, percent in applied:
            exact = exact * percent / _HUNDRED
    amount = round_half_up(exact)
    try:
        check_amount(amount, "the encounter's amount")
    except ValueError as exc:
        raise AmountOutOfBounds(f"{exc} ({MAX_AMOUNT_MINOR} is the most one line bills)") from None
    return Priced(entry.amount_minor, units, tuple((c, format(p, "f")) for c, p in applied), amount)


def in_effect(effective_dates: Sequence[date], on: date) -> int | None:
    """Index of the version in effect on ``on``: the latest ``effective_from`` ≤ ``on``
    (``effective_dates`` sorted ascending), or None if none had started."""
    index = bisect_right(effective_dates, on)
    return index - 1 if index else None
