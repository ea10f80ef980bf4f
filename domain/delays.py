"""Client-caused delay: what it bills at the advisory rate and how far it moves a schedule.

The sample risk-sharing clause: "If delivery is delayed due to Client dependency delays
exceeding three business days, schedule shall extend day-for-day and any additional coordination
time will be billed at the agreed advisory rate." So a milestone's delays count in total: once
they exceed the grace, its deadlines move by all of them (not only the excess), and falling back
within the grace (a delay reversed) moves them back.

Stdlib only, like the rest of ``domain``.
"""

from decimal import Decimal

from domain.time_billing import entry_amount

# A year of business days: one entry claiming more is a typo, and it bounds every amount.
MAX_DELAY_BUSINESS_DAYS = 260
MAX_DELAY_GRACE = 260


def delay_amount(business_days: int, advisory_rate_minor: int) -> int:
    """Business days x the advisory rate per business day, through the one rounding rule (an
    integer product rounds to itself; a reversal mirrors its entry)."""
    return entry_amount(Decimal(business_days), advisory_rate_minor)


def schedule_shift(delay_business_days: int, grace_business_days: int) -> int:
    """How many business days a milestone's deadlines move for its total delay: all of it once
    it exceeds the grace, none while within it."""
    if delay_business_days < 0 or grace_business_days < 0:
        raise ValueError(
            f"delays and grace are counted in business days >= 0, got "
            f"{delay_business_days} and {grace_business_days}"
        )
    return delay_business_days if delay_business_days > grace_business_days else 0
