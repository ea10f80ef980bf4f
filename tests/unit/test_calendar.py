from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import (
    BusinessCalendar,
    InvalidCalendar,
    Span,
    add_business_days,
    deadline_after,
    deadline_before,
    describe_span,
    is_business_day,
    parse_span,
    subtract_business_days,
    validate_calendar,
)

NEW_YORK = ZoneInfo("America/New_York")
ISRAEL_ZONE = ZoneInfo("Asia/Jerusalem")
US = BusinessCalendar(country="US", timezone="America/New_York")
US_WITH_CHRISTMAS_EVE = BusinessCalendar(
    country="US", timezone="America/New_York", extra_holidays=(date(2026, 12, 24),)
)
CALIFORNIA = BusinessCalendar(country="US", subdivision="CA", timezone="America/Los_Angeles")
PLAIN = BusinessCalendar()
ISRAEL = BusinessCalendar(country="IL", timezone="Asia/Jerusalem")


def ny(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


# --- is_business_day ---


def test_weekends_are_never_business_days() -> None:
    assert not is_business_day(date(2026, 11, 21), PLAIN)  # Saturday
    assert not is_business_day(date(2026, 11, 22), PLAIN)  # Sunday
    assert is_business_day(date(2026, 11, 23), PLAIN)  # Monday


def test_without_a_country_public_holidays_are_business_days() -> None:
    assert is_business_day(date(2026, 12, 25), PLAIN)  # Christmas, a Friday


def test_us_federal_holidays_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 11, 26), US)  # Thanksgiving
    assert not is_business_day(date(2026, 12, 25), US)  # Christmas
    assert not is_business_day(date(2027, 1, 1), US)  # New Year's Day


def test_an_observed_us_holiday_is_not_a_business_day() -> None:
    # July 4th 2026 is a Saturday; the holiday is observed on Friday July 3rd.
    assert not is_business_day(date(2026, 7, 3), US)


def test_the_day_after_thanksgiving_is_a_us_business_day_but_not_in_california() -> None:
    # The holidays package lists it for some states (e.g. CA), not federally.
    assert is_business_day(date(2026, 11, 27), US)
    assert not is_business_day(date(2026, 11, 27), CALIFORNIA)


def test_extra_holidays_are_not_business_days() -> None:
    assert is_business_day(date(2026, 12, 24), US)
    assert not is_business_day(date(2026, 12, 24), US_WITH_CHRISTMAS_EVE)


def test_israels_weekend_is_friday_and_saturday_so_sunday_is_a_business_day() -> None:
    week = [date(2026, 11, 20 + offset) for offset in range(7)]  # Friday 20th to Thursday 26th
    assert [is_business_day(day, ISRAEL) for day in week] == [False, False] + [True] * 5
    assert [is_business_day(day, US) for day in week] == [True, False, False] + [True] * 3 + [False]


@pytest.mark.parametrize(
    ("day", "business"),
    [
        (date(2021, 12, 24), False),  # a Friday, weekend until the end of 2021
        (date(2021, 12, 26), True),  # a Sunday, a working day until the end of 2021
        (date(2022, 1, 7), True),  # a Friday, a working day from 2022
        (date(2022, 1, 9), False),  # a Sunday, weekend from 2022
    ],
)
def test_the_uae_weekend_moved_from_friday_saturday_to_saturday_sunday_in_2022(
    day: date, business: bool
) -> None:
    assert is_business_day(day, BusinessCalendar(country="AE", timezone="Asia/Dubai")) is business


def test_is_business_day_refuses_a_datetime() -> None:
    with pytest.raises(TypeError, match="not a datetime"):
        is_business_day(datetime(2026, 11, 23, tzinfo=UTC), US)


# --- add_business_days ---


def test_one_business_day_after_a_friday_is_the_monday_at_the_same_local_time() -> None:
    result = add_business_days(ny(2026, 11, 20), 1, US)
    assert result == ny(2026, 11, 23)
    assert result.tzinfo is UTC
    assert result == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 EST


def jerusalem(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo("Asia/Jerusalem"))


def test_business_days_in_israel_land_on_sunday_to_thursday() -> None:
    # Thursday 19 November 2026 + 1 is Sunday the 22nd; + 5 is Thursday the 26th.
    landed = [add_business_days(jerusalem(2026, 11, 19), n, ISRAEL) for n in range(1, 8)]
    assert [moment.astimezone(ISRAEL_ZONE).date().day for moment in landed] == [
        22, 23, 24, 25, 26, 29, 30
    ]  # fmt: skip
    assert {moment.astimezone(ISRAEL_ZONE).strftime("%a") for moment in landed} == {
        "Sun", "Mon", "Tue", "Wed", "Thu"
    }  # fmt: skip


def test_the_same_business_days_in_the_us_land_on_monday_to_friday() -> None:
    landed = [add_business_days(ny(2026, 11, 19), n, US) for n in range(1, 6)]
    assert [moment.astimezone(NEW_YORK).strftime("%a %d") for moment in landed] == [
        "Fri 20", "Mon 23", "Tue 24", "Wed 25", "Fri 27"  # Thanksgiving (Thu 26th) skipped
    ]  # fmt: skip


def test_israeli_holidays_are_skipped_like_weekends() -> None:
    # Thursday 17 September 2026 + 2: Fri/Sat weekend, Sun 20th, then Yom Kippur (Mon 21st).
    assert add_business_days(jerusalem(2026, 9, 17), 2, ISRAEL) == jerusalem(2026, 9, 22)


def test_thanksgiving_is_skipped_but_the_day_after_counts_in_the_us() -> None:
    assert add_business_days(ny(2026, 11, 25), 1, US) == ny(2026, 11, 27)
    assert add_business_days(ny(2026, 11, 25), 2, US) == ny(2026, 11, 30)


def test_california_skips_both_thanksgiving_and_the_day_after() -> None:
    start = datetime(2026, 11, 25, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    expected = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert add_business_days(start, 1, CALIFORNIA) == expected


def test_an_extra_holiday_christmas_and_a_weekend_are_all_skipped() -> None:
    # Wed 23rd + 1: Thu 24th (extra), Fri 25th (Christmas), weekend -> Mon 28th.
    assert add_business_days(ny(2026, 12, 23, 9), 1, US_WITH_CHRISTMAS_EVE) == ny(2026, 12, 28, 9)
    assert add_business_days(ny(2026, 12, 23, 9), 1, US) == ny(2026, 12, 24, 9)


def test_one_business_day_after_new_years_eve_is_the_first_monday_of_january() -> None:
    # Fri Jan 1st 2027 is New Year's Day and Jan 2nd-3rd are a weekend.
    assert add_business_days(ny(2026, 12, 31), 1, US) == ny(2027, 1, 4)


def test_several_business_days_span_several_weekends() -> None:
    # Mon Nov 2nd + 10 business days, with Veterans Day (Wed Nov 11th) skipped.
    assert add_business_days(ny(2026, 11, 2), 10, US) == ny(2026, 11, 17)


def test_days_are_counted_in_the_calendars_time_zone_not_in_utc() -> None:
    # Saturday 02:00 UTC is still Friday 21:00 in New York.
    start = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    assert add_business_days(start, 1, US) == ny(2026, 11, 23, 21)
    # In a UTC calendar the same instant is a Saturday, so +1 lands on Monday.
    assert add_business_days(start, 1, PLAIN) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_the_local_time_of_day_is_kept_across_a_dst_change() -> None:
    # DST ends Sunday Nov 1st 2026: 10:00 EDT (14:00 UTC) -> 10:00 EST (15:00 UTC).
    result = add_business_days(ny(2026, 10, 30), 1, US)
    assert result == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    assert result.astimezone(NEW_YORK).hour == 10


def test_zero_business_days_returns_the_start_in_utc_even_on_a_weekend() -> None:
    start = ny(2026, 11, 21)  # Saturday
    result = add_business_days(start, 0, US)
    assert result == start
    assert result.tzinfo is UTC


def test_add_business_days_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_days(datetime(2026, 11, 20, 10, 0), 1, US)


@pytest.mark.parametrize("days", [-1, True])
def test_add_business_days_refuses_negative_or_bool_counts(days: int) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        add_business_days(ny(2026, 11, 20), days, US)


# --- subtract_business_days ---


def test_one_business_day_before_a_monday_is_the_friday_at_the_same_local_time() -> None:
    assert subtract_business_days(ny(2026, 11, 23), 1, US) == ny(2026, 11, 20)


def test_stepping_back_skips_thanksgiving_but_counts_the_day_after() -> None:
    assert subtract_business_days(ny(2026, 11, 30), 1, US) == ny(2026, 11, 27)
    assert subtract_business_days(ny(2026, 11, 30), 2, US) == ny(2026, 11, 25)


def test_one_business_day_before_a_sunday_in_israel_is_the_thursday() -> None:
    sunday = datetime(2026, 11, 22, 10, 0, tzinfo=ISRAEL_ZONE)
    thursday = datetime(2026, 11, 19, 10, 0, tzinfo=ISRAEL_ZONE)
    assert subtract_business_days(sunday, 1, ISRAEL) == thursday


def test_stepping_back_undoes_stepping_forward_between_business_days() -> None:
    start = ny(2026, 12, 23, 9)
    for days in range(0, 12):
        later = add_business_days(start, days, US_WITH_CHRISTMAS_EVE)
        assert subtract_business_days(later, days, US_WITH_CHRISTMAS_EVE) == start


def test_stepping_back_refuses_a_negative_count_and_a_naive_moment() -> None:
    with pytest.raises(ValueError):
        subtract_business_days(ny(2026, 11, 23), -1, US)
    with pytest.raises(ValueError):
        subtract_business_days(datetime(2026, 11, 23, 10), 1, US)


def test_a_span_before_a_deadline_steps_back_business_days_or_subtracts_a_duration() -> None:
    assert deadline_before(ny(2026, 11, 30), Span(business_days=1), US) == ny(2026, 11, 27)
    assert deadline_before(ny(2026, 11, 23), Span(iso="PT24H"), US) == ny(2026, 11, 22)


# --- validate_calendar ---


@pytest.mark.parametrize(
    ("cal", "day_off", "working_day"),
    [
        (PLAIN, date(2026, 11, 21), date(2026, 11, 23)),
        (US, date(2026, 11, 26), date(2026, 11, 27)),
        (CALIFORNIA, date(2026, 11, 27), date(2026, 11, 30)),
        (
            BusinessCalendar(country="GB", subdivision="ENG", timezone="Europe/London"),
            date(2026, 12, 28),  # Boxing Day (a Saturday) observed on the Monday
            date(2026, 12, 29),
        ),
        (ISRAEL, date(2026, 9, 21), date(2026, 9, 20)),  # Yom Kippur; the Sunday before
        (
            BusinessCalendar(timezone="Asia/Tokyo", extra_holidays=(date(2026, 1, 2),)),
            date(2026, 1, 2),
            date(2026, 1, 5),
        ),
    ],
)
def test_validate_calendar_accepts_known_countries_subdivisions_and_zones_and_they_resolve(
    cal: BusinessCalendar, day_off: date, working_day: date
) -> None:
    assert validate_calendar(cal) is None
    assert (is_business_day(day_off, cal), is_business_day(working_day, cal)) == (False, True)


@pytest.mark.parametrize(
    ("cal", "message"),
    [
        (BusinessCalendar(country="ZZ"), "no country 'ZZ'"),
        (BusinessCalendar(country="us"), "no country 'us'"),
        (BusinessCalendar(country="US", subdivision="XX"), "no subdivision 'XX'"),
        (BusinessCalendar(subdivision="CA"), "needs a country"),
        (BusinessCalendar(timezone="Mars/Olympus_Mons"), "unknown IANA time zone"),
        (BusinessCalendar(timezone="../etc/passwd"), "unknown IANA time zone"),
        (BusinessCalendar(timezone=""), "IANA name"),
        (
            BusinessCalendar(extra_holidays=(datetime(2026, 12, 24, tzinfo=UTC),)),
            "must be dates",
        ),
    ],
)
def test_validate_calendar_rejects_what_it_cannot_resolve(
    cal: BusinessCalendar, message: str
) -> None:
    with pytest.raises(InvalidCalendar, match=message):
        validate_calendar(cal)


# --- spans ---


@pytest.mark.parametrize(
    ("obj", "span"),
    [
        (None, None),
        ({"business_days": 5}, Span(business_days=5)),
        ({"business_days": 0}, Span(business_days=0)),
        ({"duration": "PT48H"}, Span(iso="PT48H")),
        ({"duration": "P180D"}, Span(iso="P180D")),
        ({"duration": "P1M"}, Span(iso="P1M")),
        ({"duration": "P1Y2M3DT4H"}, Span(iso="P1Y2M3DT4H")),
    ],
)
def test_parse_span_reads_business_days_or_an_iso_duration(
    obj: dict[str, object] | None, span: Span | None
) -> None:
    assert parse_span(obj) == span


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, "exactly one key"),
        ({"business_days": 5, "duration": "PT1H"}, "exactly one key"),
        ({"business_days": 5, "note": "x"}, "exactly one key"),
        ({"days": 5}, "exactly one key"),
        ({"business_days": -1}, "non-negative integer"),
        ({"business_days": True}, "non-negative integer"),
        ({"business_days": "5"}, "non-negative integer"),
        ({"duration": 48}, "ISO 8601 string"),
        ({"duration": "48 hours"}, "ISO 8601"),
        ({"duration": "pt48h"}, "ISO 8601"),
        ({"duration": "PT48H\n"}, "whitespace"),
        ({"duration": "P0D"}, "positive"),
        ({"duration": "-P1D"}, "positive"),
        ({"duration": "P1.5M"}, "whole numbers"),
        ("P1D", "mapping"),
    ],
)
def test_parse_span_rejects_anything_else_with_a_clear_message(obj: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_span(obj)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{}, {"business_days": 5, "iso": "PT1H"}])
def test_a_span_has_exactly_one_of_business_days_and_iso(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Span(**kwargs)  # type: ignore[arg-type]


def test_a_business_day_deadline_follows_the_calendar() -> None:
    assert deadline_after(ny(2026, 11, 25), Span(business_days=2), US) == ny(2026, 11, 30)


def test_an_hours_deadline_is_exact_elapsed_time_regardless_of_weekends() -> None:
    result = deadline_after(ny(2026, 11, 20), Span(iso="PT48H"), US)
    assert result == datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_an_hours_deadline_across_a_dst_change_is_still_exact_elapsed_time() -> None:
    result = deadline_after(ny(2026, 10, 31), Span(iso="PT24H"), US)
    assert result == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)  # 09:00 EST, not 10:00


def test_a_days_deadline_adds_calendar_days() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert deadline_after(start, Span(iso="P180D"), US) == datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def test_a_month_deadline_clamps_to_the_end_of_a_shorter_month() -> None:
    start = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert deadline_after(start, Span(iso="P1M"), PLAIN) == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)


def test_deadline_after_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_after(datetime(2026, 1, 1), Span(iso="PT1H"), PLAIN)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (Span(business_days=5), "5 business days"),
        (Span(business_days=1), "1 business day"),
        (Span(business_days=0), "0 business days"),
        (Span(iso="PT48H"), "PT48H"),
    ],
)
def test_describe_span_words_the_span_for_humans(span: Span, text: str) -> None:
    assert describe_span(span) == text


@pytest.mark.parametrize(
    "raw", [{"business_days": 2601}, {"duration": "P11Y"}, {"duration": "P4000D"}]
)
def test_a_span_longer_than_ten_years_is_refused_as_a_typo(raw: dict):
    with pytest.raises(ValueError, match="at most"):
        parse_span(raw)


def test_a_ten_year_span_is_still_accepted():
    assert parse_span({"duration": "P10Y"}) == Span(iso="P10Y")
    assert parse_span({"business_days": 2600}) == Span(business_days=2600)
