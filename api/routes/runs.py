"""Triggers, runs, decisions and cancellations over HTTP: thin doors onto ``services/``.

No database transaction stays open while Temporal is called: each route does its reading and
writing in a worker thread, commits, and only then talks to Temporal.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import RunAccepted, RunStatus
from api.problems import Problem, not_found
from api.schemas import CancelIn, DecisionIn, TriggerIn
from api.trigger_door import accept_and_start
from api.views import run_row_view, run_status_view
from db.models import Run
from domain.lifecycle import TERMINAL_STAGES, RunStage
from services.access import load_engagement
from services.callers import Caller
from services.evidence import EvidenceNotLinkable, check_citable, link_evidence
from services.run_ends import end_run
from services.runs import RunClosed, read_status, send_cancel, send_decision
from workflows.contracts import CancelRequest, DecisionSignal

router = APIRouter(prefix="/v1", tags=["runs"])
MAX_KEY = 255


@router.post(
    "/milestones/{milestone_id}/triggers",
    status_code=202,
    response_description="Accepted: the trigger is recorded and its run started.",
    responses={
        200: {
            "model": RunAccepted,
            "description": "This Idempotency-Key was accepted before: the same run.",
        }
    },
)
async def post_trigger(
    milestone_id: str,
    body: TriggerIn,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[
        str | None, Header(description="Required; at most 255 characters. Without it: 400.")
    ] = None,
) -> RunAccepted:
    """Record the trigger once and start its run; a retry with the same key changes nothing."""
    key = _idempotency_key(idempotency_key)
    data = body.model_dump(mode="json")
    accepted = await accept_and_start(
        session, caller, milestone_id, key, data, temporal, settings.task_queue
    )
    run = accepted.run
    response.status_code = 202 if accepted.new else 200
    return RunAccepted(
        run_id=run.run_id,
        milestone_id=run.milestone_id,
        stage=accepted.stage,
        status_url=link(request, "get_run", run_id=run.run_id),
    )


def _idempotency_key(value: str | None) -> str:
    if not value or not value.strip():
        raise Problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            f"Send an Idempotency-Key header (at most {MAX_KEY} characters) with every trigger.",
        )
    if len(value) > MAX_KEY:
        raise Problem(
            400,
            "idempotency-key-too-long",
            "Idempotency-Key too long",
            f"The Idempotency-Key header must be at most {MAX_KEY} characters.",
        )
    return value


@router.get("/runs/{run_id}", name="get_run", response_model_exclude_unset=True)
async def get_run(
    run_id: str, session: SessionDep, caller: CallerDep, temporal: TemporalDep
) -> RunStatus:
    run = await run_in_threadpool(_visible_run, session, caller, run_id)
    try:
        status = await read_status(temporal, run.id, run.stage)
        return RunStatus.model_validate(run_status_view(status, run))
    except RPCError:
        return RunStatus.model_validate(await run_in_threadpool(run_row_view, session, run))


@router.post("/runs/{run_id}/decisions", status_code=202, response_model_exclude_unset=True)
async def post_decision(
    run_id: str,
    body: DecisionIn,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> RunStatus:
    """The workflow judges the decision (an Update) and the caller hears its verdict."""
    if caller.kind != "principal":
        raise Problem(403, "forbidden", "Forbidden", "Decisions are made with an approver's token.")
    run = await run_in_threadpool(_decidable_run, session, caller, run_id, body.evidence_ids)
    signal = DecisionSignal(
        role=body.role,
        principal_id=caller.id,
        decision=body.decision,
        comment=body.comment,
        evidence_ids=body.evidence_ids,
    )
    try:
        status = await send_decision(temporal, run.id, signal, settings.update_patience_seconds)
    except RunClosed:
        raise await run_in_threadpool(_closed, session, run.id) from None
    if body.evidence_ids:
        await run_in_threadpool(_link, session, caller, run.engagement_id, body.evidence_ids)
    return RunStatus.model_validate(run_status_view(status))


@router.post("/runs/{run_id}/cancel", status_code=200, response_model_exclude_unset=True)
async def cancel_run(
    run_id: str,
    body: CancelIn,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> RunStatus:
    """End a run ``cancelled`` with the reason; it releases what it held. Past sign-off (billing,
    applying a change order, releasing retention) a run finishes instead: 409."""
    run = await run_in_threadpool(_visible_run, session, caller, run_id)
    try:
        request = CancelRequest(body.reason, caller.actor)
        status = await send_cancel(temporal, run.id, request, settings.update_patience_seconds)
    except RunClosed:
        # No workflow to ask (never started, terminated, gone): the books are ended here.
        return await run_in_threadpool(_cancel_without_workflow, session, run.id, body.reason)
    return RunStatus.model_validate(run_status_view(status))


def _visible_run(session: Session, caller: Caller, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise not_found("Run", run_id)
    load_engagement(session, run.engagement_id, caller)
    session.commit()  # nothing stays open while Temporal is asked
    return run


def _decidable_run(session: Session, caller: Caller, run_id: str, evidence_ids: list[str]) -> Run:
    """The run, once the cited evidence is known to be citable (checked, not yet linked: a
    decision the workflow refuses must change nothing)."""
    run = _visible_run(session, caller, run_id)
    try:
        check_citable(session, evidence_ids, run.engagement_id, caller)
    except EvidenceNotLinkable as exc:
        errors = [{"field": "evidence_ids", "message": m} for m in exc.errors.values()]
        raise Problem(422, "validation-error", "Invalid request", str(exc), errors) from None
    finally:
        session.commit()  # only read: ends the transaction without expiring ``run``
    return run


def _link(session: Session, caller: Caller, engagement_id: str, evidence_ids: list[str]) -> None:
    link_evidence(session, evidence_ids, engagement_id, caller)
    session.commit()


def _closed(session: Session, run_id: str) -> Problem:
    run = session.get_one(Run, run_id)
    session.refresh(run)
    session.commit()
    if run.stage in TERMINAL_STAGES:
        return Problem(409, "run-closed", "Run closed", f"The run is closed ({run.stage}).")
    return Problem(
        503,
        "run-unavailable",
        "Run unavailable",
        "The run's workflow is not running; an operator has been told (see the reconciler).",
    )


def _cancel_without_workflow(session: Session, run_id: str, reason: str) -> RunStatus:
    detail = f"cancelled by admin: {reason}"
    if not end_run(session, run_id, RunStage.CANCELLED, detail, datetime.now(UTC), "admin"):
        raise _closed(session, run_id)
    session.commit()
    return RunStatus.model_validate(run_row_view(session, session.get_one(Run, run_id)))
