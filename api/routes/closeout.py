"""POST/GET /v1/engagements/{id}/closeout: the engagement's final sign-off and retention release.

The request is checked and recorded by ``services.closeouts`` in one commit; everything after
that is the ``EngagementCloseout`` workflow's.
"""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import CloseoutAccepted, RunStatus
from api.problems import Problem, not_found, temporal_unreachable
from api.schemas import CloseoutIn
from api.views import run_row_view, run_status_view
from db.models import Run
from services.access import load_engagement
from services.callers import Caller
from services.closeouts import abandon_closeout, request_closeout, start_closeout
from services.runs import read_status

router = APIRouter(prefix="/v1/engagements", tags=["closeout"])


@router.post("/{engagement_id}/closeout", status_code=202)
async def post_closeout(
    engagement_id: str,
    body: CloseoutIn,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> CloseoutAccepted:
    """Start the close-out; 503 (and nothing left changed) when Temporal cannot be reached."""
    closeout = await run_in_threadpool(request_closeout, session, caller, engagement_id, body)
    try:
        await start_closeout(temporal, settings.task_queue, closeout)
    except Exception as exc:  # whatever stopped the start, the engagement must not stay closing
        await run_in_threadpool(abandon_closeout, session, closeout)
        if not isinstance(exc, RPCError) and not temporal_unreachable(exc):
            raise
        raise Problem(
            503,
            "temporal-unavailable",
            "Close-out not started",
            "The close-out could not be started and was withdrawn; the engagement is active "
            "again. Retry the request.",
        ) from exc
    return CloseoutAccepted(
        run_id=closeout.run_id,
        engagement_id=closeout.engagement_id,
        stage="received",
        status_url=link(request, "get_run", run_id=closeout.run_id),
    )


@router.get("/{engagement_id}/closeout", response_model_exclude_unset=True)
async def get_closeout(
    engagement_id: str, session: SessionDep, caller: CallerDep, temporal: TemporalDep
) -> RunStatus:
    """The latest close-out's status (as ``GET /v1/runs/{run_id}`` shows it)."""
    run_id, stage = await run_in_threadpool(_latest_closeout, session, caller, engagement_id)
    try:
        status = await read_status(temporal, run_id, stage)
        return RunStatus.model_validate(run_status_view(status))
    except RPCError:
        return await run_in_threadpool(_row_view, session, run_id)


def _latest_closeout(session: Session, caller: Caller, engagement_id: str) -> tuple[str, str]:
    """The latest close-out's run id and recorded stage; the read ends here so no lock is held
    while Temporal is asked."""
    engagement = load_engagement(session, engagement_id, caller)
    latest = session.execute(
        select(Run.id, Run.stage)
        .where(Run.engagement_id == engagement.id, Run.kind == "closeout")
        .order_by(Run.created_at.desc())
        .limit(1)
    ).first()
    session.rollback()
    if latest is None:
        raise not_found("Close-out of engagement", engagement_id)
    return latest.id, latest.stage


def _row_view(session: Session, run_id: str) -> RunStatus:
    return RunStatus.model_validate(run_row_view(session, session.get_one(Run, run_id)))
