"""Client-caused delay: business days at the advisory rate, billed in full beside the capped work,
and the schedule moving day-for-day only once a milestone's delay exceeds the grace."""

from decimal import Decimal

import pytest

from domain.delays import delay_amount, schedule_shift
from domain.time_billing import EntryKind, PeriodEntry, Terms, bill_period, entry_amount


def test_a_delay_bills_its_business_days_at_the_advisory_rate_and_a_reversal_mirrors_it():
    assert delay_amount(4, 120_000) == 480_000
    assert delay_amount(-4, 120_000) == -480_000
    assert delay_amount(1, 0) == 0


@pytest.mark.parametrize(
    ("delay", "grace", "shift"),
    [
        (0, 3, 0),
        (3, 3, 0),  # exactly the grace: the schedule holds
        (4, 3, 4),  # beyond it: day-for-day, all of it
        (10, 3, 10),
        (1, 0, 1),  # no grace: every delay moves the schedule
    ],
)
def test_the_schedule_moves_by_the_whole_delay_once_it_exceeds_the_grace(delay, grace, shift):
    assert schedule_shift(delay, grace) == shift


def test_a_negative_delay_or_grace_is_a_bug_not_a_shift():
    with pytest.raises(ValueError):
        schedule_shift(-1, 3)


def delay(id_: str, days: int, rate: int, kind: EntryKind = EntryKind.WORK) -> PeriodEntry:
    amount = delay_amount(days, rate)
    return PeriodEntry(id_, "dependency_delay", Decimal(0), rate, amount, kind, days)


def work(id_: str, hours: str, rate: int) -> PeriodEntry:
    return PeriodEntry(id_, "senior", Decimal(hours), rate, entry_amount(Decimal(hours), rate))


def test_delays_bill_in_full_outside_the_cap_the_floor_and_retention():
    entries = [
        work("w", "8", 20_000),  # 160,000, 60,000 over the cap
        delay("d1", 2, 50_000),  # 100,000
        delay("d2", 3, 50_000),  # 150,000
    ]
    terms = Terms(period_cap_minor=100_000, minimum_minor=100_000, retention_percent=Decimal(10))
    bill = bill_period(entries, terms, 0)
    assert (bill.gross_minor, bill.capped_minor, bill.true_up_minor) == (100_000, 60_000, 0)
    assert bill.retention_minor == 10_000  # of the work only
    assert bill.delay is not None
    assert (bill.delay.business_days, bill.delay.entry_count, bill.delay_minor) == (5, 2, 250_000)
    assert bill.delay.rates == {50_000: 5}
    assert bill.entries["d2"] == (150_000, 0)
    assert [r.role for r in bill.roles] == ["senior"]


def test_a_delay_does_not_count_towards_the_floor():
    bill = bill_period([delay("d", 5, 50_000)], Terms(minimum_minor=100_000), 0)
    assert (bill.true_up_minor, bill.delay_minor) == (100_000, 250_000)


def test_a_delay_reversed_within_the_period_bills_nothing_and_a_later_reversal_gives_back():
    voided = [
        delay("d", 4, 50_000, EntryKind.VOID),
        delay("r", -4, 50_000, EntryKind.VOID),
    ]
    bill = bill_period(voided, Terms(), 0)
    assert bill.delay is not None and (bill.delay_minor, bill.delay.business_days) == (0, 0)
    assert bill.entries == {"d": (0, 0), "r": (0, 0)}
    credit = bill_period([delay("r", -4, 50_000, EntryKind.CREDIT)], Terms(), 0)
    assert credit.delay_minor == -200_000 and credit.entries["r"] == (-200_000, 0)


def test_a_period_without_delays_has_no_delay_line():
    assert bill_period([work("w", "1", 100)], Terms(), 0).delay is None
