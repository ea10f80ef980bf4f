"""Invoice and credit-note numbers, and payment due dates.

Imports domain.calendar (and so `holidays`): like it, this module is not meant for
the workflow sandbox; compute due dates in activities or the API.
"""

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.calendar import BusinessCalendar, InvalidCalendar, Span, deadline_after

INVOICE_PREFIX: Final = "TG"
CREDIT_NOTE_PREFIX: Final = "TG-CN"
MAX_SEQUENCE: Final = 999_999
# The raw span used when an engagement sets no payment terms: net 30 days.
DEFAULT_PAYMENT_TERMS: Final[Mapping[str, str]] = {"duration": "P30D"}

# Letters and digits in hyphen-separated groups, so a number splits back unambiguously.
_PREFIX = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


class InvalidDocumentNumber(ValueError):
    """A document number that can't be formed from the given prefix, year and sequence."""


class SeriesExhausted(InvalidDocumentNumber):
    """Every number of a prefix's yearly series has been used."""


def document_number(prefix: str, year: int, sequence: int) -> str:
    """The number of the `sequence`-th document of a year: ("TG", 2026, 42) -> "TG-2026-000042".

    The sequence is zero-padded to six digits so numbers sort as text; a seventh digit
    would break that, so the series ends at 999999 instead.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise InvalidDocumentNumber(
            f"prefix must be letters and digits in hyphen-separated groups like 'TG-CN', "
            f"got {prefix!r}"
        )
    if isinstance(year, bool) or not isinstance(year, int) or not 1000 <= year <= 9999:
        raise InvalidDocumentNumber(f"year must be a four-digit int, got {year!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise InvalidDocumentNumber(f"sequence must be an int starting at 1, got {sequence!r}")
    if sequence > MAX_SEQUENCE:
        raise SeriesExhausted(
            f"the {prefix}-{year} series is exhausted: it has only {MAX_SEQUENCE:,} numbers"
        )
    return f"{prefix}-{year}-{sequence:06d}"


def due_date(issued_on: datetime, terms: Span, cal: BusinessCalendar) -> date:
    """The payment due date of an invoice issued at the aware datetime `issued_on`.

    The deadline is `calendar.deadline_after` (business days skip weekends and the
    calendar's holidays; ISO durations are elapsed time), read as a local date in the
    calendar's time zone, which is the date the customer sees.
    """
    try:
        zone = ZoneInfo(cal.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidCalendar(f"unknown IANA time zone {cal.timezone!r}") from exc
    return deadline_after(issued_on, terms, cal).astimezone(zone).date()
