"""Business-day calendars and deadline spans (business days or ISO 8601 durations).

May import `holidays`, `zoneinfo` and `isodate`: unlike the other domain modules it is
not needed inside the workflow sandbox.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import isodate
from holidays import HolidayBase

_ONE_DAY = timedelta(days=1)


class InvalidCalendar(ValueError):
    """A calendar naming a country, subdivision or time zone we can't resolve."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Business days as the `holidays` package knows them for `country` (its weekend, e.g.
    Friday to Saturday in IL, its public holidays, its weekend working days), minus
    `extra_holidays`. Without a country: Monday to Friday, no public holidays."""

    country: str | None = None
    subdivision: str | None = None
    timezone: str = "UTC"
    extra_holidays: tuple[date, ...] = ()


def validate_calendar(cal: BusinessCalendar) -> None:
    """Raise InvalidCalendar unless every field of `cal` can be resolved."""
    supported = holidays.list_supported_countries()
    if cal.country is not None and cal.country not in supported:
        raise InvalidCalendar(f"holiday calendar has no country {cal.country!r}")
    if cal.subdivision is not None:
        if cal.country is None:
            raise InvalidCalendar(f"subdivision {cal.subdivision!r} needs a country")
        if cal.subdivision not in supported[cal.country]:
            raise InvalidCalendar(
                f"{cal.country} has no subdivision {cal.subdivision!r} in the holiday calendar"
            )
    _zone(cal.timezone)
    for day in cal.extra_holidays:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise InvalidCalendar(f"extra holidays must be dates, got {day!r}")


def is_business_day(day: date, cal: BusinessCalendar) -> bool:
    """True unless `day` is a weekend day or public holiday of the calendar's country (the
    package's rules for that date), or one of the calendar's extra holidays."""
    if isinstance(day, datetime):
        # datetime is a date subclass but never equals one, so holiday lookups would miss.
        raise TypeError(f"is_business_day takes a date, not a datetime: {day!r}")
    if day in cal.extra_holidays:
        return False
    return _country_days(cal.country, cal.subdivision, day.year).is_working_day(day)


def add_business_days(start: datetime, days: int, cal: BusinessCalendar) -> datetime:
    """The moment `days` business days after `start`, at the same local time of day.

    Days are counted in the calendar's time zone, starting with the day after `start`'s
    local date; `start` itself never counts, even if it is a business day. On a DST
    change the local time is kept (a 02:30 that doesn't exist comes out as 03:30, an
    ambiguous 01:30 is its first occurrence).
    Returns an aware UTC datetime.
    """
    _require_aware(start)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a non-negative int, got {days!r}")
    zone = _zone(cal.timezone)
    if days == 0:
        return start.astimezone(UTC)
    local = start.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day += _ONE_DAY
        if is_business_day(day, cal):
            counted += 1
    # fold=0: an ambiguous local time (DST fall-back) means its first occurrence.
    return datetime.combine(day, local.time().replace(fold=0), tzinfo=zone).astimezone(UTC)


def subtract_business_days(end: datetime, days: int, cal: BusinessCalendar) -> datetime:
    """The moment `days` business days before `end`, at the same local time of day: the
    mirror of `add_business_days` (`end`'s own date never counts; DST handled the same way).
    Returns an aware UTC datetime."""
    _require_aware(end)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a non-negative int, got {days!r}")
    zone = _zone(cal.timezone)
    if days == 0:
        return end.astimezone(UTC)
    local = end.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day -= _ONE_DAY
        if is_business_day(day, cal):
            counted += 1
    return datetime.combine(day, local.time().replace(fold=0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Span:
    """A deadline length: a number of business days, or an ISO 8601 duration string."""

    business_days: int | None = None
    iso: str | None = None

    def __post_init__(self) -> None:
        if (self.business_days is None) == (self.iso is None):
            raise ValueError("a span needs exactly one of business_days and iso")


# Contract timers beyond ten years are typos; refusing them keeps deadlines computable.
MAX_BUSINESS_DAYS = 2600
MAX_SPAN = timedelta(days=3660)


def parse_span(obj: Mapping[str, object] | None) -> Span | None:
    """Parse {"business_days": 5} or {"duration": "PT48H"}; None means no deadline."""
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise ValueError(f"a span must be a mapping like {{'business_days': 5}}, got {obj!r}")
    keys = set(obj)
    if keys == {"business_days"}:
        days = obj["business_days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValueError(f"business_days must be a non-negative integer, got {days!r}")
        if days > MAX_BUSINESS_DAYS:
            raise ValueError(f"business_days must be at most {MAX_BUSINESS_DAYS}, got {days}")
        return Span(business_days=days)
    if keys == {"duration"}:
        text = obj["duration"]
        if not isinstance(text, str):
            raise ValueError(f"duration must be an ISO 8601 string like 'PT48H', got {text!r}")
        reference = datetime(2000, 1, 1, tzinfo=UTC)
        if reference + _parse_duration(text) > reference + MAX_SPAN:
            raise ValueError(f"duration must be at most {MAX_SPAN.days} days, got {text!r}")
        return Span(iso=text)
    raise ValueError(
        "a span must have exactly one key, 'business_days' or 'duration', "
        f"got {sorted(map(str, keys))}"
    )


def deadline_after(start: datetime, span: Span, cal: BusinessCalendar) -> datetime:
    """When a span that starts at `start` ends, as an aware UTC datetime.

    ISO durations are added in UTC, so "PT48H" is exactly 48 elapsed hours and "P1M"
    is a calendar month of the UTC date; business days follow `add_business_days`.
    """
    _require_aware(start)
    if span.business_days is not None:
        return add_business_days(start, span.business_days, cal)
    assert span.iso is not None  # Span guarantees exactly one is set
    result: datetime = start.astimezone(UTC) + _parse_duration(span.iso)
    return result


def deadline_before(end: datetime, span: Span, cal: BusinessCalendar) -> datetime:
    """When a span that ends at `end` starts, as an aware UTC datetime: business days step
    back on the calendar (`subtract_business_days`), ISO durations are subtracted in UTC."""
    _require_aware(end)
    if span.business_days is not None:
        return subtract_business_days(end, span.business_days, cal)
    assert span.iso is not None  # Span guarantees exactly one is set
    result: datetime = end.astimezone(UTC) - _parse_duration(span.iso)
    return result


def describe_span(span: Span) -> str:
    """Human wording: "1 business day", "5 business days", or the ISO string itself."""
    if span.business_days is not None:
        unit = "business day" if span.business_days == 1 else "business days"
        return f"{span.business_days} {unit}"
    return str(span.iso)


@lru_cache(maxsize=512)
def _country_days(country: str | None, subdivision: str | None, year: int) -> HolidayBase:
    """The package's calendar for `year`, with the years either side loaded too: a holiday
    observed across New Year, or a weekend working day moved from a neighbouring year, is
    then known. Built with expand=False, so lookups never mutate it (it is shared between
    threads) and `is_working_day` is only asked about dates of `year`."""
    years = range(year - 1, year + 2)
    if country is None:
        return HolidayBase(years=years, expand=False)
    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=years, expand=False)
    except NotImplementedError as exc:
        raise InvalidCalendar(str(exc)) from exc


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise InvalidCalendar(f"time zone must be an IANA name like 'Europe/Paris', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCalendar(f"unknown IANA time zone {name!r}") from exc


def _require_aware(moment: datetime) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")


def _parse_duration(text: str) -> timedelta | isodate.Duration:
    if text != text.strip():  # isodate would accept a trailing newline
        raise ValueError(f"duration must not have surrounding whitespace: {text!r}")
    try:
        duration = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise ValueError(
            f"duration must be ISO 8601 like 'PT48H' or 'P180D', got {text!r}"
        ) from exc
    if isinstance(duration, isodate.Duration):
        calendar_part = (duration.years, duration.months)
        if any(part != int(part) for part in calendar_part):
            raise ValueError(f"duration years and months must be whole numbers, got {text!r}")
        parts_ok = all(part >= 0 for part in calendar_part) and duration.tdelta >= timedelta(0)
        positive = parts_ok and (any(calendar_part) or duration.tdelta > timedelta(0))
    else:
        positive = duration > timedelta(0)
    if not positive:
        raise ValueError(f"duration must be positive, got {text!r}")
    return duration
