"""SLA period arithmetic: names, the period an instant falls in (in the calendar's zone), and
bounds across month ends, ISO week-years and DST changes."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.periods import InvalidPeriod, PeriodKind, bounds, first_day, period_containing

MONTHLY, WEEKLY, QUARTERLY = PeriodKind.MONTHLY, PeriodKind.WEEKLY, PeriodKind.QUARTERLY


@pytest.mark.parametrize(
    ("kind", "instant", "zone", "name"),
    [
        (MONTHLY, datetime(2026, 11, 15, 12, tzinfo=UTC), "UTC", "2026-11"),
        # 23:30 UTC on 30 November is already 1 December in Berlin, still November in New York.
        (MONTHLY, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "Europe/Berlin", "2026-12"),
        (MONTHLY, datetime(2026, 12, 1, 3, tzinfo=UTC), "America/New_York", "2026-11"),
        (MONTHLY, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "UTC", "2026-12"),
        (WEEKLY, datetime(2026, 11, 20, tzinfo=UTC), "UTC", "2026-W47"),
        # 1 January 2027 is a Friday: ISO week 53 of 2026.
        (WEEKLY, datetime(2027, 1, 1, 12, tzinfo=UTC), "UTC", "2026-W53"),
        (WEEKLY, datetime(2025, 12, 29, 12, tzinfo=UTC), "UTC", "2026-W01"),
        (QUARTERLY, datetime(2026, 11, 1, tzinfo=UTC), "UTC", "2026-Q4"),
        (QUARTERLY, datetime(2026, 3, 31, 23, tzinfo=UTC), "Asia/Tokyo", "2026-Q2"),
    ],
)
def test_the_period_containing_an_instant_is_read_in_the_calendar_zone(kind, instant, zone, name):
    assert period_containing(kind, instant, zone) == name


def test_a_month_starts_and_ends_at_local_midnight_whatever_its_length():
    start, end = bounds(MONTHLY, "2028-02", "UTC")
    assert (start, end) == (datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC))
    start, end = bounds(MONTHLY, "2026-12", "UTC")
    assert end == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_month_across_a_dst_change_is_an_hour_longer_not_shifted():
    start, end = bounds(MONTHLY, "2026-10", "Europe/Berlin")
    assert start == datetime(2026, 9, 30, 22, tzinfo=UTC)  # 00:00 CEST
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # 00:00 CET
    assert end - start == timedelta(days=31, hours=1)
    start, end = bounds(MONTHLY, "2026-03", "America/New_York")
    assert end - start == timedelta(days=31) - timedelta(hours=1)


def test_weeks_and_quarters_have_their_bounds():
    assert bounds(WEEKLY, "2026-W47", "UTC") == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert bounds(QUARTERLY, "2026-Q4", "UTC") == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert first_day(WEEKLY, "2026-W53").isoformat() == "2026-12-28"


@pytest.mark.parametrize("instant_day", range(1, 366, 7))
def test_every_instant_falls_in_the_bounds_of_its_period(instant_day):
    instant = datetime(2026, 1, 1, 23, 30, tzinfo=UTC) + timedelta(days=instant_day)
    for kind in PeriodKind:
        for zone in ("UTC", "Europe/Berlin", "Pacific/Auckland"):
            start, end = bounds(kind, period_containing(kind, instant, zone), zone)
            assert start <= instant < end


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (MONTHLY, "2026-1"),
        (MONTHLY, "2026-13"),
        (MONTHLY, "2026-W47"),
        (MONTHLY, "0000-01"),
        (WEEKLY, "2025-W53"),  # 2025 has 52 ISO weeks
        (WEEKLY, "2026-W00"),
        (QUARTERLY, "2026-Q5"),
        (QUARTERLY, "2026-11"),
    ],
)
def test_a_name_not_of_the_kind_is_refused(kind, name):
    with pytest.raises(InvalidPeriod):
        first_day(kind, name)
