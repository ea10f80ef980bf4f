"""Credit notes and clawbacks: how much of an invoiced line may be given back.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

from collections.abc import Callable
from decimal import Decimal

from domain.money import InvalidAmount, InvalidPercent, percent_of

_HUNDRED = Decimal(100)


class CreditExceedsLine(ValueError):
    """A credit larger than what is left to credit on the invoice line."""


class InvalidCredit(ValueError):
    """A credit amount that isn't a positive int of minor units, or inconsistent totals."""


def creditable_minor(invoiced_minor: int, credited_minor: int) -> int:
    """What may still be credited on one invoice line.

    Only positive lines can be credited: a zero line or a negative one (retention
    withheld, an earlier reversal) has nothing to give back. `credited_minor` is the
    positive total of credits already issued against the line.
    """
    _require_int("invoiced_minor", invoiced_minor)
    _require_int("credited_minor", credited_minor)
    if credited_minor < 0:
        raise InvalidCredit(
            f"credited_minor is the positive total already credited, got {credited_minor}"
        )
    limit = max(invoiced_minor, 0)
    if credited_minor > limit:
        # Corrupt totals: better to stop than to hide an over-credit behind a zero.
        raise InvalidCredit(
            f"a line invoiced {invoiced_minor} cannot already be credited {credited_minor}"
        )
    return limit - credited_minor


def check_credit(
    invoiced_minor: int,
    credited_minor: int,
    requested_minor: int,
    *,
    describe: Callable[[int], str] = str,
    line_id: str | None = None,
) -> None:
    """Raise unless `requested_minor` can be credited on the line.

    InvalidCredit for a requested amount that isn't a positive int; CreditExceedsLine
    when it is more than `creditable_minor`. `describe` formats amounts in the message,
    e.g. `lambda m: format_minor(m, "USD")`; `line_id` names the line in it.
    """
    if isinstance(requested_minor, bool) or not isinstance(requested_minor, int):
        raise InvalidCredit(f"a credit must be an int of minor units, got {requested_minor!r}")
    if requested_minor <= 0:
        raise InvalidCredit(f"a credit must be more than zero, got {describe(requested_minor)}")
    available = creditable_minor(invoiced_minor, credited_minor)
    if requested_minor <= available:
        return
    line = f"line {line_id}" if line_id else "the line"
    if invoiced_minor <= 0:
        raise CreditExceedsLine(
            f"{line} invoiced {describe(invoiced_minor)}: "
            "only lines with a positive amount can be credited"
        )
    raise CreditExceedsLine(
        f"{line} invoiced {describe(invoiced_minor)}, "
        f"already credited {describe(credited_minor)}: "
        f"at most {describe(available)} can be credited, not {describe(requested_minor)}"
    )


def clawback_minor(billed_minor: int, percent: Decimal) -> int:
    """The part of a billed bonus to claw back: `percent` % of it, rounded half up."""
    if isinstance(billed_minor, bool) or not isinstance(billed_minor, int) or billed_minor < 0:
        raise InvalidAmount(
            f"billed_minor must be a non-negative int of minor units, got {billed_minor!r}"
        )
    if not isinstance(percent, Decimal) or not percent.is_finite() or not 0 <= percent <= _HUNDRED:
        raise InvalidPercent(f"clawback percent must be a Decimal from 0 to 100, got {percent!r}")
    return percent_of(billed_minor, percent)


def _require_int(name: str, value: object) -> None:
    # bool is an int subclass; True cents is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCredit(f"{name} must be an int of minor units, got {value!r}")
