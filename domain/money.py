"""Money in integer minor units, decimal-string percentages, and the one rounding rule.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, Inexact, localcontext
from fractions import Fraction

from domain.currencies import ISO_4217_EXPONENTS


class UnknownCurrency(ValueError):
    """Not an active ISO 4217 code we support."""


class InvalidPercent(ValueError):
    """A percentage that isn't a plain decimal string between 0 and 100."""


class InvalidAmount(ValueError):
    """A money amount that isn't an int of minor units or a plain decimal string."""


# ASCII digits only: `\d` and Decimal() would also accept other scripts' digits.
_UNSIGNED_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SIGNED_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")
_HUNDRED = Decimal(100)
# Enough digits that amount * percent is exact for any realistic amount; Inexact is
# trapped so an absurd one fails loudly instead of being rounded twice.
_PRECISION = 50


def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of an ISO 4217 code ("USD" -> 2). Case-sensitive."""
    exponent = ISO_4217_EXPONENTS.get(code) if isinstance(code, str) else None
    if exponent is None:
        raise UnknownCurrency(f"unknown currency code {code!r} (expected e.g. 'USD')")
    return exponent


def parse_percent(text: str) -> Decimal:
    """Parse a percentage such as "10" or "12.5" into a Decimal in [0, 100].

    Only plain decimal strings are accepted; floats, ints, exponents, NaN, signs and
    surrounding spaces are rejected so a percentage always round-trips exactly.
    """
    if not isinstance(text, str):
        raise InvalidPercent(
            f"percentage must be a decimal string like '12.5', got {type(text).__name__}"
        )
    if text.startswith("-") and _UNSIGNED_DECIMAL.fullmatch(text[1:]):
        raise InvalidPercent(f"percentage must not be negative, got {text!r}")
    if not _UNSIGNED_DECIMAL.fullmatch(text):
        raise InvalidPercent(f"percentage must be a decimal string like '12.5', got {text!r}")
    value = Decimal(text)
    if value > _HUNDRED:
        raise InvalidPercent(f"percentage must be at most 100, got {text!r}")
    return value


def round_half_up(value: Decimal) -> int:
    """THE rounding rule: a Decimal number of minor units to an int, halves away from zero.

    Every other module rounds through this function so all amounts agree to the unit.
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"can only round a finite Decimal, got {value!r}")
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def percent_of(amount_minor: int, percent: Decimal) -> int:
    """`percent` % of an amount in minor units, rounded half up (10% of 5 is 1)."""
    _require_minor(amount_minor)
    if not isinstance(percent, Decimal) or not percent.is_finite():
        raise InvalidPercent(f"percentage must be a finite Decimal, got {percent!r}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.traps[Inexact] = True
        exact = Decimal(amount_minor) * percent / _HUNDRED
    return round_half_up(exact)


def allocate(total_minor: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Split `total_minor` in proportion to `weights` so the parts sum exactly to it.

    Largest-remainder method: every part gets the floor of its exact share, and the
    units left over go one each to the largest fractional remainders, earliest index
    first on ties. A negative total is split by its absolute value and negated, so
    a refund mirrors the charge it reverses.
    """
    _require_minor(total_minor)
    shares = [_weight(w) for w in weights]
    if not shares:
        raise ValueError("allocate needs at least one weight")
    weight_sum = sum(shares, Fraction(0))
    if weight_sum == 0:
        raise ValueError("allocate needs at least one non-zero weight")

    magnitude = abs(total_minor)
    exact = [magnitude * share / weight_sum for share in shares]
    parts = [int(x) for x in exact]  # floor: every share is non-negative
    leftover = magnitude - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return [-p for p in parts] if total_minor < 0 else parts


def parse_major(amount: str, currency: str) -> int:
    """Parse a major-unit decimal string into minor units ("33333.33" USD -> 3333333).

    More fraction digits than the currency has (even zeros, "1000.0" JPY) is an error,
    never a silent rounding.
    """
    exponent = currency_exponent(currency)
    if not isinstance(amount, str):
        raise InvalidAmount(
            f"amount must be a decimal string like '1234.56', got {type(amount).__name__}"
        )
    match = _SIGNED_DECIMAL.fullmatch(amount)
    if match is None:
        raise InvalidAmount(f"amount must be a decimal string like '1234.56', got {amount!r}")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise InvalidAmount(
            f"{currency} has {exponent} decimal places, {amount!r} has {len(fraction)}"
        )
    minor = int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or "0")
    return -minor if amount.startswith("-") else minor


def format_minor(amount_minor: int, currency: str) -> str:
    """Format minor units as major units with ',' thousands and '.' decimals.

    Locale-independent on purpose: this is for invoice lines and logs, not for display
    in a user's locale.
    """
    _require_minor(amount_minor)
    exponent = currency_exponent(currency)
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    sign = "-" if amount_minor < 0 else ""
    text = f"{sign}{whole:,}"
    return f"{text}.{fraction:0{exponent}d}" if exponent else text


def _require_minor(amount_minor: object) -> None:
    # bool is an int subclass; True cents is always a bug.
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount(f"amount must be an int of minor units, got {amount_minor!r}")


def _weight(weight: object) -> Fraction:
    if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
        raise ValueError(f"weights must be ints or Decimals, got {weight!r}")
    if isinstance(weight, Decimal) and not weight.is_finite():
        raise ValueError(f"weights must be finite, got {weight!r}")
    if weight < 0:
        raise ValueError(f"weights must not be negative, got {weight!r}")
    return Fraction(weight)
