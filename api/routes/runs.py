from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.converter import value_to_type
from temporalio.service import RPCError

from api.deps import CallerDep, SessionDep, SettingsDep, TemporalDep
from api.problems import Problem, invalid, not_found
from api.routes.engagements import load_engagement
from api.routes.evidence import link_evidence
from api.runs import (
    canonical_hash,
    query_status,
    run_id_for,
    snapshot,
    start_run,
    wait_for_decision,
)
from api.schemas import DecisionIn, TriggerIn
from api.views import run_row_view, run_status_view
from db.models import Engagement, Milestone, Run, Trigger, new_id
from domain.money import parse_percent
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms, success_fee
from workflows.contracts import TERMINAL_STAGES, DecisionSignal, RunInput
from workflows.milestone_run import MilestoneRun

router = APIRouter(prefix="/v1", tags=["runs"])


@dataclass
class Accepted:
    run: RunInput
    stage: str
    new: bool


@router.post("/milestones/{milestone_id}/triggers", status_code=202)
async def post_trigger(
    milestone_id: str,
    body: TriggerIn,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Record the trigger once and start its run; a retry with the same key changes nothing."""
    if not idempotency_key or not idempotency_key.strip():
        raise Problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            "Send an Idempotency-Key header (at most 255 characters) with every trigger.",
        )
    if len(idempotency_key) > 255:
        raise Problem(
            400,
            "idempotency-key-too-long",
            "Idempotency-Key too long",
            "The Idempotency-Key header must be at most 255 characters.",
        )
    accepted = await run_in_threadpool(
        accept_trigger, session, caller, milestone_id, idempotency_key, body
    )
    try:
        await start_run(temporal, settings.task_queue, accepted.run)
    except RPCError as exc:
        raise Problem(
            503,
            "temporal-unavailable",
            "Run not started yet",
            "The trigger is recorded but its run could not be started; retry with the "
            "same Idempotency-Key.",
        ) from exc
    run = accepted.run
    payload = {
        "run_id": run.run_id,
        "milestone_id": run.milestone_id,
        "stage": accepted.stage,
        "status_url": str(request.url_for("get_run", run_id=run.run_id)),
    }
    return JSONResponse(payload, status_code=202 if accepted.new else 200)


def accept_trigger(
    session: Session, caller: CallerDep, milestone_id: str, key: str, body: TriggerIn
) -> Accepted:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    engagement = load_engagement(session, milestone.engagement_id, caller)
    if caller.kind == "principal":
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            "Triggers are posted with the admin token or an integration token.",
        )
    data = body.model_dump(mode="json")
    body_hash = canonical_hash(data)
    replay = _replay(session, milestone.id, key, body_hash)
    if replay is not None:
        return replay

    percent = parse_percent(body.completion_percent)
    if engagement.status != "active":
        raise Problem(
            409,
            "engagement-closed",
            "Engagement closed",
            f"Engagement {engagement.id} is {engagement.status}; it takes no triggers.",
        )
    if milestone.status == "removed":
        raise Problem(
            409,
            "milestone-removed",
            "Milestone removed",
            f"Milestone {milestone.key} was removed by a change order; it takes no triggers.",
        )
    if percent < 100 and not milestone.allow_partial:
        raise invalid(
            "completion_percent",
            f"milestone {milestone.key} does not allow partial acceptance; send 100",
        )
    if milestone.success_fee is not None:
        _check_measurement(milestone.success_fee, engagement.currency, body.kpis)
    if milestone.status == "accepted":
        raise Problem(
            409,
            "milestone-accepted",
            "Milestone already accepted",
            f"Milestone {milestone.key} is already fully accepted and billed.",
        )
    if percent <= Decimal(milestone.accepted_percent):
        raise Problem(
            409,
            "percent-not-above-accepted",
            "Nothing new to accept",
            f"Milestone {milestone.key} is already accepted to "
            f"{milestone.accepted_percent}%; a trigger must go above that.",
        )
    link_evidence(session, body.evidence_ids, engagement.id)

    run_id = run_id_for(milestone.id, key)
    claimed = session.execute(
        update(Milestone)
        .where(Milestone.id == milestone.id, Milestone.open_run_id.is_(None))
        .values(open_run_id=run_id, status="in_review")
    ).rowcount
    if not claimed:
        session.rollback()
        replay = _replay(session, milestone.id, key, body_hash)  # a concurrent twin won
        if replay is not None:
            return replay
        raise Problem(
            409,
            "open-run",
            "Milestone has an open run",
            f"Milestone {milestone.key} already has an open run "
            f"({session.get_one(Milestone, milestone.id).open_run_id}).",
        )
    trigger = Trigger(
        id=new_id("trg"),
        milestone_id=milestone.id,
        idempotency_key=key,
        body_hash=body_hash,
        body=data,
        run_id=run_id,
        actor=caller.actor,
    )
    run_input = snapshot(session, engagement, milestone, trigger.id, run_id, data)
    session.add(trigger)
    session.flush()
    session.add(
        Run(
            id=run_id,
            milestone_id=milestone.id,
            engagement_id=engagement.id,
            trigger_id=trigger.id,
            snapshot=_as_json(run_input),
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        replay = _replay(session, milestone.id, key, body_hash)
        if replay is None:
            raise
        return replay
    return Accepted(run=run_input, stage="received", new=True)


def _check_measurement(terms: dict[str, Any], currency: str, kpis: dict[str, str]) -> None:
    """A success fee is billed from the trigger's measurement: it must be there, and billable."""
    parsed = parse_success_fee_terms(terms, currency)
    field = f"kpis.{parsed.metric}"
    if parsed.metric not in kpis:
        raise invalid(field, f"a success-fee trigger must report {parsed.metric}")
    try:
        success_fee(parsed, kpis[parsed.metric], currency)
    except InvalidSuccessFee as exc:
        raise invalid(field, str(exc)) from None


def _replay(session: Session, milestone_id: str, key: str, body_hash: str) -> Accepted | None:
    trigger = session.scalar(
        select(Trigger).where(Trigger.milestone_id == milestone_id, Trigger.idempotency_key == key)
    )
    if trigger is None:
        return None
    if trigger.body_hash != body_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different body; use a new key.",
        )
    run = session.get_one(Run, trigger.run_id)
    return Accepted(run=_from_json(run.snapshot), stage=run.stage, new=False)


@router.get("/runs/{run_id}", name="get_run")
async def get_run(
    run_id: str, session: SessionDep, caller: CallerDep, temporal: TemporalDep
) -> dict[str, Any]:
    run = await run_in_threadpool(_visible_run, session, caller, run_id)
    try:
        return run_status_view(await query_status(temporal, run.id))
    except RPCError:
        return await run_in_threadpool(run_row_view, session, run)


@router.post("/runs/{run_id}/decisions", status_code=202)
async def post_decision(
    run_id: str, body: DecisionIn, session: SessionDep, caller: CallerDep, temporal: TemporalDep
) -> dict[str, Any]:
    """Authorize here, then signal; the workflow validates again and audits what it ignores."""
    run = await run_in_threadpool(_visible_run, session, caller, run_id)
    if caller.kind != "principal":
        raise Problem(403, "forbidden", "Forbidden", "Decisions are made with an approver's token.")
    engagement = session.get_one(Engagement, run.engagement_id)
    roles: dict[str, list[str]] = run.snapshot["policy"]["roles"]
    escalation: dict[str, list[str]] = run.snapshot["policy"]["escalation"]
    if body.role not in roles:
        raise invalid("role", f"{body.role!r} is not a sign-off role of this engagement")
    try:
        status = await query_status(temporal, run.id)
    except RPCError as exc:
        if run.stage in TERMINAL_STAGES:
            raise _closed(run.stage) from exc
        raise Problem(
            503,
            "temporal-unavailable",
            "Run unavailable",
            "The run cannot be reached right now; retry shortly.",
        ) from exc
    if status.stage in TERMINAL_STAGES:
        raise _closed(status.stage)
    if body.role not in status.pending_roles:
        if any(d.role == body.role for d in status.decisions):
            raise Problem(
                409,
                "already-decided",
                "Role already decided",
                f"Role {body.role!r} has already decided on this run.",
            )
        raise Problem(
            409,
            "not-awaiting-approval",
            "Run not awaiting approval",
            f"The run is in stage {status.stage!r}.",
        )
    escalated = body.role in status.escalated_roles and caller.id in escalation.get(body.role, [])
    if caller.id not in roles[body.role] and not escalated:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"Principal {caller.id} may not decide for {body.role!r}"
            + ("" if body.role in status.escalated_roles else " (not escalated)")
            + ".",
        )
    await run_in_threadpool(_link_and_commit, session, body.evidence_ids, engagement.id)
    await temporal.get_workflow_handle(run.id).signal(
        MilestoneRun.decide,
        DecisionSignal(
            role=body.role,
            principal_id=caller.id,
            decision=body.decision,
            comment=body.comment,
            evidence_ids=body.evidence_ids,
        ),
    )
    return run_status_view(await wait_for_decision(temporal, run.id, body.role))


def _link_and_commit(session: Session, evidence_ids: list[str], engagement_id: str) -> None:
    link_evidence(session, evidence_ids, engagement_id)
    session.commit()


def _closed(stage: str) -> Problem:
    return Problem(409, "run-closed", "Run closed", f"The run is closed ({stage}).")


def _visible_run(session: Session, caller: CallerDep, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise not_found("Run", run_id)
    load_engagement(session, run.engagement_id, caller)
    return run


def _as_json(run_input: RunInput) -> dict[str, Any]:
    return asdict(run_input)


def _from_json(data: dict[str, Any]) -> RunInput:
    return value_to_type(RunInput, data)
