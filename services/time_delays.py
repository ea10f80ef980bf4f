"""Client-caused delay moving a schedule: once the dependency delays on a milestone exceed the
engagement's ``delay_grace``, the deadlines they affect move day-for-day in the engagement's
business calendar (``domain.delays.schedule_shift``), and move back when a delay is reversed.

Affected deadlines: the delayed milestone's own (a bonus or success fee has one) and those of the
bonuses and success fees tied to it (priced as a percent of its fee, or depending on it). A run
checks its deadline when it is triggered (``MilestoneRun._in_time``, from the deadline frozen in
its input), so a move applies to triggers from then on; a run already open was judged in time.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import Engagement, Milestone, MilestoneDependency
from db.time_entries import MilestoneDelayShift, TimeEntry, TimeEntryKind, TimeTerms
from domain.calendar import BusinessCalendar, add_business_days, subtract_business_days
from domain.delays import schedule_shift
from domain.times import iso


def engagement_calendar(engagement: Engagement) -> BusinessCalendar:
    cal = engagement.approval.get("calendar") or {}
    return BusinessCalendar(
        country=cal.get("country"),
        subdivision=cal.get("subdivision"),
        timezone=cal.get("timezone") or "UTC",
        extra_holidays=tuple(
            datetime.fromisoformat(d).date() for d in cal.get("extra_holidays") or []
        ),
    )


def lock_delayed(session: Session, engagement_id: str, key: str) -> Milestone | None:
    """The delayed milestone, locked so delays on it are counted one post at a time."""
    return session.scalars(
        select(Milestone)
        .where(Milestone.engagement_id == engagement_id, Milestone.key == key)
        .with_for_update()
    ).first()


def delay_days(session: Session, engagement_id: str, key: str) -> int:
    """The business days of delay on milestone ``key`` still standing (reversals negate)."""
    total = session.scalar(
        select(func.coalesce(func.sum(TimeEntry.business_days), 0)).where(
            TimeEntry.engagement_id == engagement_id,
            TimeEntry.milestone_key == key,
            TimeEntry.entry_kind == TimeEntryKind.DEPENDENCY_DELAY,
        )
    )
    return int(total or 0)


def standing_delays(session: Session, engagement_id: str, key: str) -> list[str]:
    """The ids of the delay entries on ``key`` that are not reversed."""
    rows = session.scalars(
        select(TimeEntry).where(
            TimeEntry.engagement_id == engagement_id,
            TimeEntry.milestone_key == key,
            TimeEntry.entry_kind == TimeEntryKind.DEPENDENCY_DELAY,
        )
    ).all()
    reversed_ = {r.reverses_id for r in rows if r.reverses_id}
    return sorted(r.id for r in rows if r.reverses_id is None and r.id not in reversed_)


def move_deadlines(
    session: Session,
    engagement: Engagement,
    terms: TimeTerms,
    delayed: Milestone,
    days_before: int,
    cause_id: str,
    actor: str,
) -> list[dict[str, Any]]:
    """Move the deadlines ``delayed``'s delays affect by the change in its shift, audited as
    ``milestone_deadline_moved``; what moved (milestone, from, to)."""
    if terms.delay_grace is None:
        return []
    days_after = delay_days(session, engagement.id, delayed.key)
    change = schedule_shift(days_after, terms.delay_grace) - schedule_shift(
        days_before, terms.delay_grace
    )
    if change == 0:
        return []
    cal = engagement_calendar(engagement)
    entry_ids = standing_delays(session, engagement.id, delayed.key)
    moved = []
    for milestone in _affected(session, delayed):
        old, new = _move(session, milestone, change, cal)
        move = {
            "milestone": milestone.key,
            "delayed_milestone": delayed.key,
            "from": iso(old),
            "to": iso(new),
            "business_days": change,
            "delay_business_days": days_after,
            "delay_grace": terms.delay_grace,
            "entry_ids": entry_ids,
            "cause_id": cause_id,
        }
        append_event(
            session,
            engagement_id=engagement.id,
            actor=actor,
            kind="milestone_deadline_moved",
            milestone_id=milestone.id,
            data=move,
        )
        moved.append(move)
    return moved


def _affected(session: Session, delayed: Milestone) -> list[Milestone]:
    """The milestones with a deadline that ``delayed``'s delays move: itself and the bonuses
    and success fees priced on it or depending on it."""
    candidates = session.scalars(
        select(Milestone)
        .where(Milestone.engagement_id == delayed.engagement_id, Milestone.deadline.is_not(None))
        .order_by(Milestone.position)
        .with_for_update()
    ).all()
    return [
        m
        for m in candidates
        if m.id == delayed.id
        or session.get(MilestoneDependency, (m.id, delayed.id)) is not None
        or (m.fee_basis or {}).get("milestone") == delayed.key
    ]


def _move(
    session: Session, milestone: Milestone, change: int, cal: BusinessCalendar
) -> tuple[datetime, datetime]:
    """Shift ``milestone``'s deadline by ``change`` business days from its base, so undoing a
    shift restores the deadline exactly; a deadline changed since the last move is the new base."""
    assert milestone.deadline is not None
    row = session.get(MilestoneDelayShift, milestone.id)
    if row is None:
        row = MilestoneDelayShift(
            milestone_id=milestone.id,
            base_deadline=milestone.deadline,
            base_shift=0,
            shift=0,
            deadline=milestone.deadline,
        )
        session.add(row)
    elif row.deadline != milestone.deadline:
        row.base_deadline, row.base_shift = milestone.deadline, row.shift
    row.shift += change
    steps = row.shift - row.base_shift
    old = milestone.deadline
    new = (
        add_business_days(row.base_deadline, steps, cal)
        if steps >= 0
        else subtract_business_days(row.base_deadline, -steps, cal)
    )
    milestone.deadline = row.deadline = new
    session.flush()
    return old, new


class DelayWatch:
    """The delayed milestones one post changes: each locked and its standing delay counted
    before the change, so that afterwards the deadlines it affects move by what changed."""

    def __init__(
        self, session: Session, engagement: Engagement, terms: TimeTerms, actor: str
    ) -> None:
        self._session, self._engagement, self._terms, self._actor = (
            session,
            engagement,
            terms,
            actor,
        )
        self._before: dict[str, tuple[Milestone, int]] = {}

    def watch(self, key: str | None, entry_kind: str) -> None:
        if key is None or entry_kind != TimeEntryKind.DEPENDENCY_DELAY or key in self._before:
            return
        milestone = lock_delayed(self._session, self._engagement.id, key)
        if milestone is not None:
            self._before[key] = (milestone, delay_days(self._session, self._engagement.id, key))

    def move(self, cause_id: str) -> None:
        for milestone, days in self._before.values():
            move_deadlines(
                self._session, self._engagement, self._terms, milestone, days, cause_id, self._actor
            )
