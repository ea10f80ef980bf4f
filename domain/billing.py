"""What a billing run charges now, computed cumulatively so totals never drift.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

from dataclasses import dataclass
from decimal import Decimal

from domain.money import InvalidAmount, InvalidPercent, percent_of

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Charge:
    """One run's charge. `retention_minor` is withheld until final acceptance."""

    gross_minor: int
    retention_minor: int
    net_minor: int

    def __post_init__(self) -> None:
        if self.net_minor + self.retention_minor != self.gross_minor:
            raise ValueError(
                f"net {self.net_minor} + retention {self.retention_minor} "
                f"!= gross {self.gross_minor}"
            )


def cumulative_charge(
    fee_minor: int,
    cumulative_percent: Decimal,
    billed_minor: int,
    retained_minor: int,
    retention_percent: Decimal,
) -> Charge:
    """The charge that brings the billed totals up to `cumulative_percent` of the fee.

    Each run rounds the *cumulative* target and subtracts what earlier runs already
    billed, instead of rounding its own slice. Rounding errors therefore never pile up:
    billing 90% and then 100% totals exactly the fee, and the retention totals exactly
    percent_of(fee, retention_percent), whatever the individual runs rounded to.

    `billed_minor` and `retained_minor` are the gross and retention totals of earlier
    runs of the same fee.
    """
    for name, value in (
        ("fee_minor", fee_minor),
        ("billed_minor", billed_minor),
        ("retained_minor", retained_minor),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidAmount(f"{name} must be a non-negative int of minor units, got {value!r}")
    for name, percent in (
        ("cumulative_percent", cumulative_percent),
        ("retention_percent", retention_percent),
    ):
        if (
            not isinstance(percent, Decimal)
            or not percent.is_finite()
            or not 0 <= percent <= _HUNDRED
        ):
            raise InvalidPercent(f"{name} must be a Decimal from 0 to 100, got {percent!r}")

    target_gross = percent_of(fee_minor, cumulative_percent)
    gross = target_gross - billed_minor
    if gross < 0:
        raise ValueError(
            f"{cumulative_percent}% of {fee_minor} is {target_gross}, "
            f"less than the {billed_minor} already billed"
        )
    retention = percent_of(target_gross, retention_percent) - retained_minor
    if not 0 <= retention <= gross:
        raise ValueError(
            f"retention for this run would be {retention} of a gross {gross}; "
            f"{retained_minor} already retained does not match {retention_percent}% retention"
        )
    return Charge(gross_minor=gross, retention_minor=retention, net_minor=gross - retention)
