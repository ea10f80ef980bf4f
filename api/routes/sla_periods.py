"""SLA periods over HTTP: each period of an SLA milestone so far (met, not_met, open, pending)
and judging one on demand. The rules are in ``services.sla_judgements``; the judgement itself is
the ``JudgeSlaPeriod`` workflow's, under the id the hourly schedule uses, so the two join."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models.sla_periods import SlaJudgementStarted, SlaPeriod, SlaPeriodPage
from api.problems import Problem, temporal_unreachable
from db.models import Engagement, Milestone
from db.types import utcnow
from services.access import load_engagement
from services.callers import Caller
from services.errors import not_found
from services.sla_judgements import (
    check_judgeable,
    period_items,
    sla_period_list,
    start_judgement,
)
from workflows.sla_period import JudgeInput, judge_id

router = APIRouter(prefix="/v1/milestones", tags=["SLA periods"])


@router.get("/{milestone_id}/sla-periods", response_model=SlaPeriodPage)
def list_sla_periods(
    milestone_id: str,
    session: SessionDep,
    caller: CallerDep,
    cursor: Annotated[
        str | None, Query(max_length=16, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Periods per page.")] = 50,
) -> dict[str, Any]:
    """Each period from the milestone's first to the current one, oldest first: met (the run
    that billed it), not_met (its service credit), open (not ended) or pending (ended, not yet
    judged)."""
    engagement, milestone = _load(session, caller, milestone_id)
    items, next_cursor = sla_period_list(session, engagement, milestone, utcnow(), cursor, limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/{milestone_id}/sla-periods/{period}/judge",
    status_code=202,
    response_model=SlaJudgementStarted,
    responses={200: {"model": SlaPeriod, "description": "Judged already: the period."}},
)
async def judge_sla_period(
    milestone_id: str,
    period: str,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Any:
    """Start ``JudgeSlaPeriod`` for an ended period past its report grace (202), joining the
    schedule's judgement if it is running; a period judged already answers 200 with it."""
    judged = await run_in_threadpool(_check_judge, session, caller, milestone_id, period)
    if judged is not None:
        return JSONResponse(SlaPeriod.model_validate(judged).model_dump(), 200)
    try:
        await start_judgement(
            temporal, settings.task_queue, JudgeInput(milestone_id, period, caller.actor)
        )
    except (RPCError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not temporal_unreachable(exc):
            raise
        raise Problem(
            503,
            "temporal-unavailable",
            "Judgement not started",
            "The period's judgement could not be started; nothing changed. Retry the request.",
        ) from exc
    return {
        "workflow_id": judge_id(milestone_id, period),
        "milestone_id": milestone_id,
        "period": period,
        "status": "judging",
        "status_url": link(request, "list_sla_periods", milestone_id=milestone_id),
    }


def _load(session: Session, caller: Caller, milestone_id: str) -> tuple[Engagement, Milestone]:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    return load_engagement(session, milestone.engagement_id, caller), milestone


def _check_judge(
    session: Session, caller: Caller, milestone_id: str, period: str
) -> dict[str, Any] | None:
    """Checks before starting the judgement; the period's view if it is judged already."""
    engagement, milestone = _load(session, caller, milestone_id)
    now = utcnow()
    check_judgeable(engagement, milestone, period, now)
    [view] = period_items(session, engagement, milestone, [period], now)
    session.rollback()
    return view if view["judged_at"] is not None else None
