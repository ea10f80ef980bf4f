"""Judging SLA periods: which ended periods are due, whether one may be judged now, and each
period's standing so far.

A period is judged once it has ended and its milestone's ``report_grace_days`` (default
``DEFAULT_REPORT_GRACE_DAYS``) have passed in the engagement calendar's time zone; periods are
judged from the one containing the milestone's creation on. The judgement itself (met, not_met
with its service credit) is ``activities.sla_periods``'.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from db.models import Engagement, Milestone, Run
from db.sla_periods import SlaJudgement
from domain.lifecycle import MilestoneStatus
from domain.periods import (
    DEFAULT_REPORT_GRACE_DAYS,
    InvalidPeriod,
    PeriodKind,
    bounds,
    judged_from,
    period_containing,
    periods_to_judge,
)
from domain.sla_judgement import PeriodStatus, verdict
from domain.times import iso
from services.errors import Problem, invalid
from services.sla_periods import calendar_zone
from workflows.sla_period import JudgeInput, JudgeSlaPeriod, judge_id

# Milestones that take no more periods are not judged (their periods bill nothing anyway).
_NOT_JUDGED = (MilestoneStatus.WAIVED, MilestoneStatus.REMOVED)


def grace_days(milestone: Milestone) -> int:
    if milestone.report_grace_days is None:
        return DEFAULT_REPORT_GRACE_DAYS
    return milestone.report_grace_days


def judged_since(engagement: Engagement, milestone: Milestone) -> datetime:
    """The instant whose period is the milestone's first judged one: its creation."""
    return milestone.created_at or engagement.created_at


def due_periods(engagement: Engagement, milestone: Milestone, now: datetime) -> list[str]:
    """The milestone's periods whose grace has passed at ``now``, oldest first."""
    assert milestone.sla_period is not None
    kind, zone = PeriodKind(milestone.sla_period), calendar_zone(engagement)
    return periods_to_judge(
        kind, judged_since(engagement, milestone), now, zone, grace_days(milestone)
    )


def sla_milestones(session: Session) -> list[tuple[Engagement, Milestone]]:
    """SLA milestones still taking periods on engagements not closed, oldest first."""
    rows = session.execute(
        select(Engagement, Milestone)
        .join(Milestone, Milestone.engagement_id == Engagement.id)
        .where(
            Milestone.sla_period.is_not(None),
            Milestone.status.not_in([str(s) for s in _NOT_JUDGED]),
            Engagement.status != "closed",
        )
        .order_by(Engagement.created_at, Milestone.position, Milestone.id)
    )
    return [(engagement, milestone) for engagement, milestone in rows]


def judged_periods(session: Session, milestone_id: str) -> dict[str, SlaJudgement]:
    rows = session.scalars(select(SlaJudgement).where(SlaJudgement.milestone_id == milestone_id))
    return {row.period: row for row in rows}


def sla_periods_due(session: Session, now: datetime, limit: int) -> list[JudgeInput]:
    """Up to ``limit`` periods past their grace and not yet judged, across every SLA milestone."""
    due: list[JudgeInput] = []
    for engagement, milestone in sla_milestones(session):
        judged = judged_periods(session, milestone.id)
        for period in due_periods(engagement, milestone, now):
            if period not in judged:
                due.append(JudgeInput(milestone.id, period, "schedule"))
                if len(due) >= limit:
                    return due
    return due


def check_judgeable(
    engagement: Engagement, milestone: Milestone, period: str, now: datetime
) -> None:
    """422 when the milestone is no SLA or ``period`` is not one of its kind; 409 when the
    period is before its first judged one or its report grace has not passed yet."""
    if not milestone.sla_period:
        raise invalid("milestone", f"milestone {milestone.key} is not an SLA; it has no periods")
    kind, zone = PeriodKind(milestone.sla_period), calendar_zone(engagement)
    try:
        bounds(kind, period, zone)
    except InvalidPeriod as exc:
        raise invalid("period", f"milestone {milestone.key} is judged {kind}: {exc}") from None
    first = period_containing(kind, judged_since(engagement, milestone), zone)
    if bounds(kind, period, zone)[0] < bounds(kind, first, zone)[0]:
        raise Problem(
            409,
            "period-not-due",
            "Period not judged",
            f"Period {period} is before milestone {milestone.key}'s first period ({first}); "
            "it is never judged.",
        )
    due = judged_from(kind, period, zone, grace_days(milestone))
    if due > now:
        raise Problem(
            409,
            "period-not-due",
            "Period not due",
            f"Period {period} can be judged from {iso(due)}, when it has ended and its "
            f"{grace_days(milestone)}-day report grace has passed ({zone}).",
        )


def sla_period_list(
    session: Session,
    engagement: Engagement,
    milestone: Milestone,
    now: datetime,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """The milestone's periods from its first to the current one, oldest first, after
    ``cursor`` (a period name), ``limit`` at most; and the cursor of the next page."""
    if not milestone.sla_period:
        raise invalid("milestone", f"milestone {milestone.key} is not an SLA; it has no periods")
    kind, zone = PeriodKind(milestone.sla_period), calendar_zone(engagement)
    current = period_containing(kind, now, zone)
    names = periods_to_judge(kind, judged_since(engagement, milestone), now, zone, 0)
    names = [*names, current] if current not in names else names
    if cursor is not None:
        after = _start(kind, cursor, zone)
        names = [n for n in names if bounds(kind, n, zone)[0] > after]
    page = names[:limit]
    items = period_items(session, engagement, milestone, page, now)
    return items, page[-1] if len(names) > limit else None


def period_items(
    session: Session, engagement: Engagement, milestone: Milestone, names: list[str], now: datetime
) -> list[dict[str, Any]]:
    """The named periods as the API shows them."""
    assert milestone.sla_period is not None
    kind, zone = PeriodKind(milestone.sla_period), calendar_zone(engagement)
    judged = judged_periods(session, milestone.id)
    billed = _billing_runs(session, milestone.id, names)
    items = []
    for name in names:
        start, end = bounds(kind, name, zone)
        judgement = judged.get(name)
        if judgement is not None:
            status = judgement.outcome
        elif name in billed:
            status = PeriodStatus.MET
        else:
            status = PeriodStatus.OPEN if end > now else PeriodStatus.PENDING
        items.append(
            {
                "period": name,
                "starts_at": iso(start),
                "ends_at": iso(end),
                "judged_from": iso(judged_from(kind, name, zone, grace_days(milestone))),
                "status": str(status),
                "run_id": judgement.run_id if judgement is not None else billed.get(name),
                "credit_minor": judgement.credit_minor if judgement is not None else 0,
                "invoice_id": judgement.invoice_id if judgement is not None else None,
                "line_id": judgement.line_id if judgement is not None else None,
                "reason": judgement.reason if judgement is not None else None,
                "judged_at": iso(judgement.judged_at) if judgement is not None else None,
                "judged_by": judgement.judged_by if judgement is not None else None,
            }
        )
    return items


def _start(kind: PeriodKind, cursor: str, zone: str) -> datetime:
    try:
        return bounds(kind, cursor, zone)[0]
    except InvalidPeriod:
        raise invalid("cursor", f"{cursor!r} is not a cursor of this list") from None


def _billing_runs(session: Session, milestone_id: str, periods: list[str]) -> dict[str, str]:
    """Period → the run that billed it."""
    rows = session.execute(
        select(Run.period, Run.id).where(
            Run.milestone_id == milestone_id, Run.period.in_(periods), Run.stage == "billed"
        )
    )
    return {period: run_id for period, run_id in rows}


def verdict_of(session: Session, milestone_id: str, period: str) -> tuple[PeriodStatus, str | None]:
    """The period's verdict from its runs, and the run that billed it if one did."""
    rows = session.execute(
        select(Run.id, Run.stage).where(Run.milestone_id == milestone_id, Run.period == period)
    )
    runs = {run_id: stage for run_id, stage in rows}
    billed = next((r for r, s in runs.items() if s == "billed"), None)
    return verdict(runs.values()), billed


async def start_judgement(client: Client, task_queue: str, inp: JudgeInput) -> None:
    """Start the period's judgement; while one runs (the schedule's or an admin's), this joins it
    (judging twice changes nothing)."""
    await client.start_workflow(
        JudgeSlaPeriod.run,
        inp,
        id=judge_id(inp.milestone_id, inp.period),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"judge SLA period {inp.period} of {inp.milestone_id}",
    )
