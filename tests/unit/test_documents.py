from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import BusinessCalendar, InvalidCalendar, Span, parse_span
from domain.documents import (
    CREDIT_NOTE_PREFIX,
    DEFAULT_PAYMENT_TERMS,
    INVOICE_PREFIX,
    InvalidDocumentNumber,
    SeriesExhausted,
    document_number,
    due_date,
)

NEW_YORK = ZoneInfo("America/New_York")
US = BusinessCalendar(country="US", timezone="America/New_York")
NET_30 = Span(iso="P30D")
NET_10_BUSINESS_DAYS = Span(business_days=10)


def ny(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


# --- document_number ---


def test_invoice_numbers_are_prefix_year_and_a_six_digit_sequence() -> None:
    assert document_number("TG", 2026, 42) == "TG-2026-000042"
    assert document_number(INVOICE_PREFIX, 2026, 1) == "TG-2026-000001"


def test_credit_notes_have_their_own_prefix() -> None:
    assert document_number(CREDIT_NOTE_PREFIX, 2026, 1) == "TG-CN-2026-000001"


def test_the_last_number_of_a_series_uses_all_six_digits() -> None:
    assert document_number("TG", 2026, 999_999) == "TG-2026-999999"


def test_a_series_past_999999_is_exhausted() -> None:
    with pytest.raises(SeriesExhausted, match="the TG-2026 series is exhausted"):
        document_number("TG", 2026, 1_000_000)


@pytest.mark.parametrize("sequence", [0, -1, True, 1.0, "1"])
def test_sequences_start_at_one(sequence: object) -> None:
    with pytest.raises(InvalidDocumentNumber, match="sequence"):
        document_number("TG", 2026, sequence)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "TG-", "-TG", "TG--CN", "T G", "TG/CN", None])
def test_prefixes_are_non_empty_hyphenated_letters_and_digits(prefix: object) -> None:
    with pytest.raises(InvalidDocumentNumber, match="prefix"):
        document_number(prefix, 2026, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("year", [999, 10_000, True, "2026"])
def test_years_have_four_digits(year: object) -> None:
    with pytest.raises(InvalidDocumentNumber, match="year"):
        document_number("TG", year, 1)  # type: ignore[arg-type]


# --- due_date ---


def test_net_30_days_from_november_21() -> None:
    assert due_date(ny(2026, 11, 21), NET_30, US) == date(2026, 12, 21)


def test_the_default_payment_terms_are_net_30_days() -> None:
    assert parse_span(DEFAULT_PAYMENT_TERMS) == NET_30


def test_net_10_business_days_skips_weekends_and_thanksgiving() -> None:
    # Issued Friday 2026-11-20. Counting from the next day: Mon 23, Tue 24, Wed 25,
    # (Thu 26 is Thanksgiving) Fri 27, Mon 30, Tue Dec 1, Wed 2, Thu 3, Fri 4, Mon 7.
    assert due_date(ny(2026, 11, 20, 17), NET_10_BUSINESS_DAYS, US) == date(2026, 12, 7)


def test_without_holidays_the_same_terms_end_a_business_day_earlier() -> None:
    plain = BusinessCalendar(timezone="America/New_York")
    assert due_date(ny(2026, 11, 20, 17), NET_10_BUSINESS_DAYS, plain) == date(2026, 12, 4)


def test_the_due_date_is_the_local_date_even_when_utc_is_already_the_next_day() -> None:
    # 23:30 in New York is 04:30 UTC the next day, both when issued and when due.
    assert due_date(ny(2026, 11, 20, 23, 30), NET_10_BUSINESS_DAYS, US) == date(2026, 12, 7)
    assert due_date(ny(2026, 11, 21, 23, 30), NET_30, US) == date(2026, 12, 21)


def test_an_issue_time_in_utc_is_read_in_the_calendars_time_zone() -> None:
    # 2026-11-21 03:00 UTC is still Friday the 20th in New York.
    issued = datetime(2026, 11, 21, 3, tzinfo=UTC)
    assert due_date(issued, NET_10_BUSINESS_DAYS, US) == date(2026, 12, 7)


def test_zero_business_days_is_due_on_the_day_of_issue() -> None:
    assert due_date(ny(2026, 11, 21), Span(business_days=0), US) == date(2026, 11, 21)


def test_a_naive_issue_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_date(datetime(2026, 11, 21, 10), NET_30, US)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidCalendar, match="Mars/Olympus"):
        due_date(ny(2026, 11, 21), NET_30, BusinessCalendar(timezone="Mars/Olympus"))
