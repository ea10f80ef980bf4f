"""Which SLA period a trigger reports on, and whether that period can still be billed.

A trigger names its period (``2026-11``) or gets the one containing its receipt in the
engagement calendar's time zone. A period bills once: while one of its runs is open or billed,
another trigger for it is a 409; a run that ended without billing (criteria failed, rejected,
cancelled …) frees it for a corrected report (the database's partial unique index
``uq_runs_milestone_id_period_open_or_billed`` holds the same rule against races). Once judged
(``services.sla_judgements``) a period takes no more triggers: a met one answers
``period-billed``, a not_met one ``period-closed``.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Engagement, Milestone, Run
from db.sla_periods import SlaJudgement
from domain.lifecycle import UNBILLED_ENDS, RunStage
from domain.periods import InvalidPeriod, PeriodKind, bounds, period_containing
from services.errors import Problem, invalid


def calendar_zone(engagement: Engagement) -> str:
    return (engagement.approval.get("calendar") or {}).get("timezone") or "UTC"


def sla_period(
    engagement: Engagement, milestone: Milestone, named: str | None, received: datetime
) -> str | None:
    """The period the trigger bills (None for a milestone that is not an SLA); 422 when the
    named period is not one of the milestone's kind or has not started yet."""
    if not milestone.sla_period:
        if named is not None:
            raise invalid("period", f"milestone {milestone.key} is not an SLA; it has no periods")
        return None
    kind, zone = PeriodKind(milestone.sla_period), calendar_zone(engagement)
    if named is None:
        return period_containing(kind, received, zone)
    try:
        start, _ = bounds(kind, named, zone)
    except InvalidPeriod as exc:
        raise invalid("period", f"milestone {milestone.key} is billed {kind}: {exc}") from None
    if start > received:
        raise invalid("period", f"period {named} has not started yet ({zone})")
    return named


def check_period_free(session: Session, milestone: Milestone, period: str) -> None:
    holder = session.scalar(
        select(Run).where(
            Run.milestone_id == milestone.id,
            Run.period == period,
            Run.stage.not_in([str(s) for s in UNBILLED_ENDS]),
        )
    )
    if holder is None:
        _check_not_judged(session, milestone, period)
        return
    if holder.stage == RunStage.BILLED:
        raise Problem(
            409,
            "period-billed",
            "Period already billed",
            f"Milestone {milestone.key}'s period {period} was billed by run {holder.id}; "
            "a period bills once.",
        )
    raise Problem(
        409,
        "period-open",
        "Period in progress",
        f"Milestone {milestone.key}'s period {period} has an open run ({holder.id}, "
        f"{holder.stage}); wait for it to end.",
    )


def _check_not_judged(session: Session, milestone: Milestone, period: str) -> None:
    """A judged period is closed; the caller holds the engagement's lock, as judging does, so a
    judgement and a trigger never both win."""
    judged = session.get(SlaJudgement, (milestone.id, period), populate_existing=True)
    if judged is None:
        return
    raise Problem(
        409,
        "period-closed",
        "Period closed",
        f"Milestone {milestone.key}'s period {period} was judged {judged.outcome} on "
        f"{judged.judged_at.isoformat()}; it takes no more reports.",
    )
