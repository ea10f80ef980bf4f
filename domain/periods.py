"""SLA periods: calendar months, ISO weeks and quarters, named and bounded in a time zone.

A period is named ``2026-11`` (monthly), ``2026-W47`` (weekly, ISO 8601 week) or ``2026-Q4``
(quarterly). It starts at local midnight of its first day in the engagement calendar's time zone
and ends where the next one starts, so a month across a DST change is 1 hour shorter or longer,
never shifted. Names are parsed strictly: ``2026-1`` or ``2026-W53`` (2026 has 52 weeks) are
refused, so a period has one name.
"""

import re
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class PeriodKind(StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    QUARTERLY = "quarterly"


# Late reports for an ended period still count this many days (a milestone may choose 0 to 90).
DEFAULT_REPORT_GRACE_DAYS = 3
MAX_REPORT_GRACE_DAYS = 90


class InvalidPeriod(ValueError):
    """The name is not a period of that kind."""


PATTERNS = {
    PeriodKind.MONTHLY: (re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"), "2026-11"),
    PeriodKind.WEEKLY: (re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$"), "2026-W47"),
    PeriodKind.QUARTERLY: (re.compile(r"^(\d{4})-Q([1-4])$"), "2026-Q4"),
}


def first_day(kind: PeriodKind, name: str) -> date:
    """The period's first local date; ``InvalidPeriod`` when ``name`` is not one of ``kind``."""
    pattern, example = PATTERNS[kind]
    found = pattern.match(name)
    if found is None:
        raise InvalidPeriod(f"{name!r} is not a {kind} period; name it like {example!r}")
    year, number = int(found[1]), int(found[2])
    if year < 1:
        raise InvalidPeriod(f"{name!r} is not a {kind} period")
    if kind == PeriodKind.MONTHLY:
        return date(year, number, 1)
    if kind == PeriodKind.QUARTERLY:
        return date(year, 3 * number - 2, 1)
    try:
        return date.fromisocalendar(year, number, 1)
    except ValueError:
        raise InvalidPeriod(f"{year} has no ISO week {number}") from None


def _name_of_day(kind: PeriodKind, day: date) -> str:
    if kind == PeriodKind.MONTHLY:
        return f"{day.year:04d}-{day.month:02d}"
    if kind == PeriodKind.QUARTERLY:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _next_first_day(kind: PeriodKind, day: date) -> date:
    if kind == PeriodKind.WEEKLY:
        return day + timedelta(days=7)
    months = 1 if kind == PeriodKind.MONTHLY else 3
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def period_containing(kind: PeriodKind, instant: datetime, zone: str) -> str:
    """The name of the period ``instant`` (timezone-aware) falls in, read in ``zone``."""
    return _name_of_day(kind, instant.astimezone(ZoneInfo(zone)).date())


def bounds(kind: PeriodKind, name: str, zone: str) -> tuple[datetime, datetime]:
    """The period's start (inclusive) and end (exclusive) as UTC instants."""
    start = first_day(kind, name)
    end = _next_first_day(kind, start)
    tz = ZoneInfo(zone)
    return (
        datetime.combine(start, time(), tz).astimezone(UTC),
        datetime.combine(end, time(), tz).astimezone(UTC),
    )


def next_period(kind: PeriodKind, name: str) -> str:
    """The period right after ``name``."""
    return _name_of_day(kind, _next_first_day(kind, first_day(kind, name)))


def judged_from(kind: PeriodKind, name: str, zone: str, grace_days: int) -> datetime:
    """When the period may be judged: local midnight ``grace_days`` days after it ends (late
    reports still count until then), as a UTC instant."""
    end = _next_first_day(kind, first_day(kind, name)) + timedelta(days=grace_days)
    return datetime.combine(end, time(), ZoneInfo(zone)).astimezone(UTC)


def periods_to_judge(
    kind: PeriodKind, since: datetime, now: datetime, zone: str, grace_days: int
) -> list[str]:
    """Every period from the one containing ``since`` whose grace has passed at ``now``, oldest
    first (none while the first period's grace runs)."""
    names, name = [], period_containing(kind, since, zone)
    while judged_from(kind, name, zone, grace_days) <= now:
        names.append(name)
        name = next_period(kind, name)
    return names
