"""Which SLA periods are due for judgement: an ended period is judged at local midnight its
grace days after it ends, in the calendar's zone, across month, week and quarter ends and DST;
and what a period's runs make of it."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.periods import PeriodKind, judged_from, next_period, periods_to_judge
from domain.sla_judgement import PeriodStatus, verdict

MONTHLY, WEEKLY, QUARTERLY = PeriodKind.MONTHLY, PeriodKind.WEEKLY, PeriodKind.QUARTERLY


@pytest.mark.parametrize(
    ("kind", "name", "after"),
    [
        (MONTHLY, "2026-11", "2026-12"),
        (MONTHLY, "2026-12", "2027-01"),
        (WEEKLY, "2026-W52", "2026-W53"),  # 2026 has 53 ISO weeks
        (WEEKLY, "2026-W53", "2027-W01"),
        (QUARTERLY, "2026-Q4", "2027-Q1"),
    ],
)
def test_the_next_period_crosses_year_ends(kind, name, after):
    assert next_period(kind, name) == after


def test_a_month_is_judged_at_local_midnight_its_grace_days_after_it_ends():
    # November in Berlin ends at 1 December 00:00 CET (23:00 UTC on 30 November).
    assert judged_from(MONTHLY, "2026-11", "Europe/Berlin", 0) == datetime(
        2026, 11, 30, 23, tzinfo=UTC
    )
    assert judged_from(MONTHLY, "2026-11", "Europe/Berlin", 3) == datetime(
        2026, 12, 3, 23, tzinfo=UTC
    )
    assert judged_from(MONTHLY, "2026-11", "America/New_York", 3) == datetime(
        2026, 12, 4, 5, tzinfo=UTC
    )


def test_a_grace_across_a_dst_change_still_ends_at_local_midnight():
    # March 2026 ends on 1 April, after Europe's clocks went forward on 29 March: CEST, UTC+2.
    assert judged_from(MONTHLY, "2026-03", "Europe/Berlin", 0) == datetime(
        2026, 3, 31, 22, tzinfo=UTC
    )
    # A weekly grace running over the change: week 13 ends Monday 30 March 00:00 CEST.
    assert judged_from(WEEKLY, "2026-W13", "Europe/Berlin", 0) == datetime(
        2026, 3, 29, 22, tzinfo=UTC
    )
    # October's grace runs past the autumn change (25 October): 3 November 00:00 CET.
    assert judged_from(MONTHLY, "2026-10", "Europe/Berlin", 2) == datetime(
        2026, 11, 2, 23, tzinfo=UTC
    )


def test_a_quarter_is_judged_after_its_last_month():
    assert judged_from(QUARTERLY, "2026-Q3", "Asia/Tokyo", 5) == datetime(
        2026, 10, 5, 15, tzinfo=UTC
    )


def test_every_period_from_the_milestones_creation_is_due_once_its_grace_has_passed():
    created = datetime(2026, 8, 20, 10, tzinfo=UTC)
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    # November's 3-day grace runs until 4 December: it is not due yet.
    assert periods_to_judge(MONTHLY, created, now, "UTC", 3) == ["2026-08", "2026-09", "2026-10"]
    assert periods_to_judge(MONTHLY, created, now, "UTC", 1) == [
        "2026-08",
        "2026-09",
        "2026-10",
        "2026-11",
    ]


def test_the_boundary_instant_makes_a_period_due():
    created = datetime(2026, 11, 3, tzinfo=UTC)
    due = datetime(2026, 12, 3, tzinfo=UTC)
    assert periods_to_judge(MONTHLY, created, due, "UTC", 2) == ["2026-11"]
    assert periods_to_judge(MONTHLY, created, due - timedelta(microseconds=1), "UTC", 2) == []


def test_the_first_period_is_read_in_the_calendar_zone():
    # 23:30 UTC on 30 November is already December in Berlin: November is never judged.
    created = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    now = datetime(2027, 1, 10, tzinfo=UTC)
    assert periods_to_judge(MONTHLY, created, now, "Europe/Berlin", 3) == ["2026-12"]
    assert periods_to_judge(MONTHLY, created, now, "UTC", 3) == ["2026-11", "2026-12"]


def test_weeks_are_due_across_the_year_end():
    created = datetime(2026, 12, 21, tzinfo=UTC)  # Monday of week 52
    now = datetime(2027, 1, 12, tzinfo=UTC)
    assert periods_to_judge(WEEKLY, created, now, "UTC", 0) == [
        "2026-W52",
        "2026-W53",
        "2027-W01",
    ]


def test_nothing_is_due_while_the_first_period_runs():
    created = datetime(2026, 12, 1, tzinfo=UTC)
    assert periods_to_judge(QUARTERLY, created, datetime(2026, 12, 31, tzinfo=UTC), "UTC", 0) == []


@pytest.mark.parametrize(
    ("stages", "status"),
    [
        ([], PeriodStatus.NOT_MET),  # nobody reported
        (["rejected"], PeriodStatus.NOT_MET),  # the report failed the criteria
        (["rejected", "cancelled", "failed"], PeriodStatus.NOT_MET),
        (["rejected", "billed"], PeriodStatus.MET),  # a corrected report billed it
        (["awaiting_approval"], PeriodStatus.PENDING),  # a report is in sign-off
        (["rejected", "received"], PeriodStatus.PENDING),
    ],
)
def test_a_period_is_met_when_a_run_billed_it_and_pending_while_one_is_open(stages, status):
    assert verdict(stages) == status
