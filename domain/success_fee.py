"""Success fees: a percentage of the improvement of a money metric over a baseline.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, DecimalException, Inexact, localcontext

from domain.bounds import MAX_AMOUNT_MINOR, MAX_DECIMAL_CHARS
from domain.money import (
    InvalidAmount,
    InvalidPercent,
    currency_exponent,
    format_minor,
    parse_major,
    parse_percent,
    round_half_up,
)


class InvalidSuccessFee(ValueError):
    """Success-fee terms or a measured value that can't be billed as given."""


MAX_METRIC_LENGTH = 100
CLAMPS = ("floor", "cap", "zero")

_FIELDS = ("percent", "metric", "baseline", "cap_minor", "floor_minor")
_REQUIRED = ("percent", "metric", "baseline")
# Plain signed decimals with ASCII digits only, the same strictness as money amounts.
_SIGNED_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_HUNDRED = Decimal(100)
# Typographic signs for invoice text; spelled out so they can't be mistaken for x and -.
_TIMES = "\N{MULTIPLICATION SIGN}"
_MINUS = "\N{MINUS SIGN}"
# Exact for any realistic metric; Inexact is trapped so an absurd one fails loudly
# instead of being rounded twice.
_PRECISION = 50


@dataclass(frozen=True)
class SuccessFeeTerms:
    """`percent` % of (measured - `baseline`) of `metric`, clamped to [floor, cap].

    `percent` is a decimal string from 0 to 100; `baseline` a decimal string in major
    units of the engagement's currency ("120000.00"); the bounds are minor units.
    """

    percent: str
    metric: str
    baseline: str
    cap_minor: int | None = None
    floor_minor: int | None = None


@dataclass(frozen=True)
class SuccessFee:
    """A computed success fee, with everything needed to explain it on an invoice.

    `raw_minor` is the unclamped (possibly negative) fee; `clamped` says which bound,
    if any, turned it into `amount_minor`: "floor", "cap" or "zero".
    """

    amount_minor: int
    raw_minor: int
    metric: str
    measured: str
    baseline: str
    percent: str
    floor_minor: int | None
    cap_minor: int | None
    clamped: str | None

    def __post_init__(self) -> None:
        if self.clamped is not None and self.clamped not in CLAMPS:
            raise ValueError(f"clamped must be None or one of {CLAMPS}, got {self.clamped!r}")
        if self.amount_minor < 0:
            raise ValueError(f"a success fee is never negative, got {self.amount_minor}")

    def explain(self, currency: str) -> str:
        """One line for the invoice: the formula, the result and any clamp applied."""
        difference = f"{self.measured} {_MINUS} {self.baseline} {self.metric}"
        formula = f"{self.percent}% {_TIMES} ({difference})"
        text = f"{formula} = {format_minor(self.raw_minor, currency)} {currency}"
        amount = format_minor(self.amount_minor, currency)
        if self.clamped == "floor":
            text += f", raised to the floor of {amount} {currency}"
        elif self.clamped == "cap":
            text += f", capped at {amount} {currency}"
        elif self.clamped == "zero":
            text += f", so {amount} {currency}: a success fee is never negative"
        return text

    def as_dict(self) -> dict[str, object]:
        """Every field as JSON-able values, for invoice line details and the audit log."""
        return asdict(self)


def parse_success_fee_terms(raw: Mapping[str, object], currency: str) -> SuccessFeeTerms:
    """Validate success-fee terms from an engagement's JSON for `currency`.

    Raises InvalidSuccessFee naming the offending field; unknown keys are refused so
    a typo ("cap" for "cap_minor") can't silently drop a bound.
    """
    if not isinstance(raw, Mapping):
        raise InvalidSuccessFee(
            f"success-fee terms must be a mapping like {{'percent': '15', ...}}, got {raw!r}"
        )
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        raise InvalidSuccessFee(
            f"unknown success-fee field(s) {', '.join(unknown)}; expected only {', '.join(_FIELDS)}"
        )
    missing = [name for name in _REQUIRED if name not in raw]
    if missing:
        raise InvalidSuccessFee(f"success-fee terms need {', '.join(missing)}")
    terms = SuccessFeeTerms(
        percent=_percent(raw["percent"]),
        metric=_metric(raw["metric"]),
        baseline=_baseline(raw["baseline"], currency),
        cap_minor=_bound("cap_minor", raw.get("cap_minor")),
        floor_minor=_bound("floor_minor", raw.get("floor_minor")),
    )
    _check_bounds(terms.floor_minor, terms.cap_minor)
    return terms


def success_fee(terms: SuccessFeeTerms, measured: str, currency: str) -> SuccessFee:
    """The success fee for a measured value of the metric, in minor units of `currency`.

    `measured` is a decimal string in major units; it may have more decimals than the
    currency, since the single rounding happens on the fee itself. The raw fee is
    percent * (measured - baseline), rounded half up once; then the floor, the cap and
    finally zero bound it, so the fee is never negative. A measurement beyond
    MAX_AMOUNT_MINOR, or a fee that would be, is refused: nothing out of bounds is billed.
    """
    percent = _percent_value(terms.percent)
    _metric(terms.metric)
    baseline_minor = parse_major(_baseline(terms.baseline, currency), currency)
    floor_minor = _bound("floor_minor", terms.floor_minor)
    cap_minor = _bound("cap_minor", terms.cap_minor)
    _check_bounds(floor_minor, cap_minor)
    if not isinstance(measured, str) or not _SIGNED_DECIMAL.fullmatch(measured):
        raise InvalidSuccessFee(
            f"measured {terms.metric} must be a decimal string like '150000.00', got {measured!r}"
        )
    if len(measured) > MAX_DECIMAL_CHARS:
        raise InvalidSuccessFee(
            f"measured {terms.metric} has too many digits (at most {MAX_DECIMAL_CHARS} characters)"
        )

    try:
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            ctx.traps[Inexact] = True
            measured_minor = Decimal(measured).scaleb(currency_exponent(currency))
            exact = percent * (measured_minor - baseline_minor) / _HUNDRED
    except DecimalException as exc:
        raise InvalidSuccessFee(
            f"measured {terms.metric} {measured!r} has too many digits to bill exactly"
        ) from exc
    if abs(measured_minor) > MAX_AMOUNT_MINOR:
        raise InvalidSuccessFee(
            f"measured {terms.metric} {measured!r} is beyond the maximum of "
            f"{MAX_AMOUNT_MINOR} minor units"
        )
    raw = round_half_up(exact)

    amount: int = raw
    clamped: str | None = None
    if floor_minor is not None and amount < floor_minor:
        amount, clamped = floor_minor, "floor"
    if cap_minor is not None and amount > cap_minor:
        amount, clamped = cap_minor, "cap"
    if amount < 0:
        amount, clamped = 0, "zero"
    if amount > MAX_AMOUNT_MINOR:
        raise InvalidSuccessFee(
            f"measured {terms.metric} {measured!r} earns a fee of {amount} minor units, beyond "
            f"the maximum of {MAX_AMOUNT_MINOR}; a cap_minor bounds it"
        )
    return SuccessFee(
        amount_minor=amount,
        raw_minor=raw,
        metric=terms.metric,
        measured=measured,
        baseline=terms.baseline,
        percent=terms.percent,
        floor_minor=floor_minor,
        cap_minor=cap_minor,
        clamped=clamped,
    )


def _percent_value(value: object) -> Decimal:
    if not isinstance(value, str):
        raise InvalidSuccessFee(
            f"percent must be a decimal string like '15', got {type(value).__name__}"
        )
    try:
        return parse_percent(value)
    except InvalidPercent as exc:
        raise InvalidSuccessFee(f"percent: {exc}") from exc


def _percent(value: object) -> str:
    _percent_value(value)
    return str(value)


def _metric(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSuccessFee(
            f"metric must be the non-empty name of a KPI like 'monthly_revenue', got {value!r}"
        )
    if len(value) > MAX_METRIC_LENGTH:
        raise InvalidSuccessFee(
            f"metric must be at most {MAX_METRIC_LENGTH} characters, got {len(value)}"
        )
    return value


def _baseline(value: object, currency: str) -> str:
    if not isinstance(value, str):
        raise InvalidSuccessFee(
            f"baseline must be a decimal string in major units like '120000.00', "
            f"got {type(value).__name__}"
        )
    if len(value) > MAX_DECIMAL_CHARS:
        raise InvalidSuccessFee(f"baseline must be at most {MAX_DECIMAL_CHARS} characters long")
    try:
        minor = parse_major(value, currency)
    except InvalidAmount as exc:
        raise InvalidSuccessFee(f"baseline: {exc}") from exc
    if abs(minor) > MAX_AMOUNT_MINOR:
        raise InvalidSuccessFee(
            f"baseline {value!r} is beyond the maximum of {MAX_AMOUNT_MINOR} minor units"
        )
    return value


def _bound(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSuccessFee(
            f"{name} must be a non-negative int of minor units or null, got {value!r}"
        )
    if value > MAX_AMOUNT_MINOR:
        raise InvalidSuccessFee(f"{name} must be at most {MAX_AMOUNT_MINOR} minor units")
    return value


def _check_bounds(floor_minor: int | None, cap_minor: int | None) -> None:
    if floor_minor is not None and cap_minor is not None and floor_minor > cap_minor:
        raise InvalidSuccessFee(
            f"floor_minor {floor_minor} must not be above cap_minor {cap_minor}"
        )
