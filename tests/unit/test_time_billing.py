"""Time-and-materials money rules: hours x rate rounded once, rates by date and person, caps split
across entries in order, the floor's true-up, and what a period bills."""

from datetime import date
from decimal import Decimal

import pytest

from domain.time_billing import (
    EntryKind,
    InvalidHours,
    PeriodEntry,
    Rate,
    Terms,
    bill_period,
    entry_amount,
    parse_hours,
    resolve_rate,
    split_under_cap,
    true_up,
)


@pytest.mark.parametrize(
    ("hours", "rate_minor", "amount"),
    [
        ("0.5", 3, 2),  # JPY: 1.5 yen rounds half up to 2
        ("0.5", 1, 1),  # JPY: 0.5 yen rounds up to 1, never to 0
        ("7.5", 15_000, 112_500),  # JPY 15,000/h
        ("0.5", 10_001, 5_001),  # USD 100.01/h: 5,000.5 cents -> 5,001
        ("7.33", 12_345, 90_489),  # USD 123.45/h: 90,488.85 cents -> 90,489
        ("0.01", 49, 0),  # USD: 0.49 cents -> 0
        ("0.01", 50, 1),  # USD: 0.50 cents -> 1
        ("2.25", 12_345, 27_776),  # KWD 12.345/h: 27,776.25 fils -> 27,776
        ("1.5", 33_333, 50_000),  # KWD 33.333/h: 49,999.5 fils -> 50,000
    ],
)
def test_an_amount_is_one_half_up_rounding_of_hours_times_rate(hours, rate_minor, amount):
    assert entry_amount(parse_hours(hours), rate_minor) == amount


def test_a_reversal_mirrors_its_entry_to_the_unit():
    assert entry_amount(-Decimal("0.5"), 10_001) == -entry_amount(Decimal("0.5"), 10_001)


def test_rounding_each_entry_once_is_not_rounding_the_sum():
    # Three 0.5 h entries at 1 yen/h bill 1 yen each: every entry is rounded on its own.
    assert sum(entry_amount(parse_hours("0.5"), 1) for _ in range(3)) == 3


@pytest.mark.parametrize(
    "text", ["0", "0.00", "-1", "24.01", "25", "7.555", "7,5", "1e1", " 7", "", "\u0667", 7.5, 7]
)
def test_hours_outside_the_rules_are_refused(text):
    with pytest.raises(InvalidHours):
        parse_hours(text)


@pytest.mark.parametrize(("text", "hours"), [("24", 24), ("0.01", Decimal("0.01")), ("7.50", 7.5)])
def test_hours_inside_the_rules_are_kept_exactly(text, hours):
    assert parse_hours(text) == Decimal(str(hours))


CARD = [
    Rate("senior", 20_000),
    Rate("senior", 22_000, date(2025, 12, 1), {"dana": 25_000}),
    Rate("junior", 10_000, people={"sam": 11_000}),
]


@pytest.mark.parametrize(
    ("role", "person", "on", "rate"),
    [
        ("senior", "dana", date(2025, 11, 30), 20_000),  # before the raise, no override then
        ("senior", "dana", date(2025, 12, 1), 25_000),  # the raise's day: her own rate
        ("senior", "pat", date(2025, 12, 1), 22_000),  # the raise's role rate
        ("junior", "sam", date(2020, 1, 1), 11_000),  # a person override beats the role
        ("junior", "kim", date(2020, 1, 1), 10_000),
        ("partner", "dana", date(2025, 12, 1), None),  # no such role
    ],
)
def test_the_rate_is_the_row_in_effect_that_day_person_before_role(role, person, on, rate):
    assert resolve_rate(CARD, role, person, on) == rate


def test_no_rate_before_the_first_row_takes_effect():
    assert (
        resolve_rate([Rate("senior", 1, date(2026, 1, 1))], "senior", "x", date(2025, 12, 31))
        is None
    )


def test_a_cap_bills_entries_in_order_and_records_the_rest_as_capped():
    assert split_under_cap([400, 400, 400], 1_000) == [(400, 0), (400, 0), (200, 200)]
    assert split_under_cap([400, 400], None) == [(400, 0), (400, 0)]
    assert split_under_cap([400, 400], 0) == [(0, 400), (0, 400)]
    assert split_under_cap([400], -50) == [(0, 400)]  # already past the cap: nothing billed


def test_the_floor_tops_up_only_what_is_short_and_within_the_room():
    assert true_up(300, 1_000, None) == 700
    assert true_up(1_200, 1_000, None) == 0
    assert true_up(300, None, None) == 0
    assert true_up(300, 1_000, 500) == 500  # the not-to-exceed leaves only 500


def work(id_: str, role: str, hours: str, rate: int) -> PeriodEntry:
    amount = entry_amount(Decimal(hours), rate)
    return PeriodEntry(id_, role, Decimal(hours), rate, amount)


def test_a_period_caps_bills_per_role_tops_up_and_withholds_retention():
    entries = [
        work("a", "senior", "8", 20_000),  # 160,000
        work("b", "junior", "8", 10_000),  # 80,000
        work("c", "senior", "4", 20_000),  # 80,000: 60,000 over a 300,000 period cap
    ]
    bill = bill_period(entries, Terms(period_cap_minor=300_000, retention_percent=Decimal(10)), 0)
    senior, junior = bill.roles
    assert (senior.billed_minor, senior.capped_minor, senior.entry_count) == (220_000, 20_000, 2)
    assert (junior.billed_minor, junior.capped_minor) == (80_000, 0)
    assert bill.entries["c"] == (60_000, 20_000)
    assert (bill.gross_minor, bill.capped_minor, bill.retention_minor) == (300_000, 20_000, 30_000)
    assert senior.rates == {20_000: Decimal(12)}


def test_the_not_to_exceed_counts_what_earlier_periods_billed():
    bill = bill_period(
        [work("a", "senior", "8", 20_000)], Terms(not_to_exceed_minor=1_000_000), 900_000
    )
    assert bill.entries["a"] == (100_000, 60_000)


def test_a_floor_tops_a_short_period_up():
    bill = bill_period([work("a", "senior", "1", 20_000)], Terms(minimum_minor=100_000), 0)
    assert (bill.true_up_minor, bill.gross_minor) == (80_000, 100_000)
    assert bill_period([], Terms(minimum_minor=100_000), 0).true_up_minor == 100_000


def test_an_entry_and_its_reversal_in_one_period_bill_nothing():
    entries = [
        PeriodEntry("a", "senior", Decimal(8), 20_000, 160_000, EntryKind.VOID),
        PeriodEntry("r", "senior", Decimal(-8), 20_000, -160_000, EntryKind.VOID),
        work("b", "senior", "2", 20_000),
    ]
    bill = bill_period(entries, Terms(), 0)
    (senior,) = bill.roles
    assert (senior.hours, senior.billed_minor, senior.entry_count) == (Decimal(2), 40_000, 3)
    assert bill.entries["a"] == bill.entries["r"] == (0, 0)


def test_a_credit_gives_back_what_the_reversed_entry_billed_and_widens_the_cap():
    entries = [
        PeriodEntry("r", "senior", Decimal(-8), 20_000, -100_000, EntryKind.CREDIT),
        work("b", "senior", "8", 20_000),
    ]
    bill = bill_period(entries, Terms(not_to_exceed_minor=1_000_000), 1_000_000)
    assert bill.entries == {"r": (-100_000, 0), "b": (100_000, 60_000)}
    assert bill.gross_minor == 0 and bill.retention_minor == 0
