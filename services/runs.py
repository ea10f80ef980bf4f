"""Milestone runs as Temporal sees them: their frozen input, their ids, starting and querying."""

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import value_to_type
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from db.models import Engagement, Milestone, MilestoneDependency, Run
from domain.money import format_minor
from services.errors import Problem
from workflows import search_attributes as sa
from workflows.contracts import (
    ApprovalPolicy,
    CancelRequest,
    DecisionSignal,
    DependencySpec,
    RunInput,
    RunStatus,
)
from workflows.milestone_run import MilestoneRun


def canonical_hash(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def run_id_for(milestone_id: str, idempotency_key: str) -> str:
    """Derived from milestone and trigger, so a duplicate trigger can never start a second run."""
    return f"run-{milestone_id}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


def snapshot(
    session: Session,
    engagement: Engagement,
    milestone: Milestone,
    trigger_id: str,
    run_id: str,
    body: dict[str, Any],
) -> RunInput:
    """Freeze everything the run needs, so later edits never change a run in flight."""
    deps = session.execute(
        select(MilestoneDependency, Milestone.key)
        .join(Milestone, Milestone.id == MilestoneDependency.depends_on_id)
        .where(MilestoneDependency.milestone_id == milestone.id)
    ).all()
    return RunInput(
        run_id=run_id,
        engagement_id=engagement.id,
        customer_id=engagement.customer_id,
        milestone_id=milestone.id,
        milestone_key=milestone.key,
        milestone_name=milestone.name,
        trigger_id=trigger_id,
        trigger_mode=milestone.trigger_mode,
        completion_percent=body["completion_percent"],
        kpis=dict(body["kpis"]),
        evidence_ids=list(body["evidence_ids"]),
        fee_minor=milestone.fee_minor,
        currency=engagement.currency,
        retention_percent=engagement.retention_percent,
        criteria=list(milestone.criteria),
        depends_on=[DependencySpec(dep.depends_on_id, key, dep.kpi) for dep, key in deps],
        policy=approval_policy(engagement),
        kind=milestone.kind,
        deadline=_iso(milestone.deadline),
        clawback=milestone.clawback,
        success_fee=milestone.success_fee,
    )


def approval_policy(engagement: Engagement) -> ApprovalPolicy:
    """The engagement's sign-off policy as every sign-off workflow freezes it."""
    approval = engagement.approval
    return ApprovalPolicy(
        roles=approval["roles"],
        escalation=approval.get("escalation") or {},
        client_roles=approval.get("client_roles") or [],
        reminder_after=approval.get("reminder_after"),
        escalate_after=approval.get("escalate_after"),
        deemed_acceptance_after=approval.get("deemed_acceptance_after"),
        expire_after=approval.get("expire_after"),
        calendar=approval.get("calendar") or {},
    )


async def start_run(
    client: Client, task_queue: str, run: RunInput
) -> WorkflowHandle[MilestoneRun, RunStatus]:
    """Start the run's workflow; starting an already started (or finished) run is a no-op."""
    fee = f"{format_minor(run.fee_minor, run.currency)} {run.currency}"
    try:
        return await client.start_workflow(
            MilestoneRun.run,
            run,
            id=run.run_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ENGAGEMENT_ID, run.engagement_id),
                    SearchAttributePair(sa.CUSTOMER_ID, run.customer_id),
                    SearchAttributePair(sa.MILESTONE_KEY, run.milestone_key),
                    SearchAttributePair(sa.STAGE, "received"),
                ]
            ),
            static_summary=f"{run.milestone_key}: {run.milestone_name} — {fee} "
            f"({run.completion_percent}%, {run.trigger_mode})",
        )
    except WorkflowAlreadyStartedError:
        return handle(client, run.run_id)


def handle(client: Client, run_id: str) -> WorkflowHandle[MilestoneRun, RunStatus]:
    return client.get_workflow_handle_for(MilestoneRun.run, run_id)


async def query_status(client: Client, run_id: str) -> RunStatus:
    return await handle(client, run_id).query(MilestoneRun.status)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---- decisions and cancellations: Updates, answered with the workflow's own judgement ---------

# How long a caller waits for the run to take a decision before hearing 503 (the worker is down).
UPDATE_PATIENCE_SECONDS = 10
# Refusal type (raised by the workflow's validators) → HTTP status and problem type.
REFUSALS = {
    "DecisionForbidden": (403, "forbidden", "Forbidden"),
    "DecisionConflict": (409, "decision-conflict", "Decision not taken"),
    "DecisionInvalid": (422, "validation-error", "Invalid request"),
    "CancelConflict": (409, "not-cancellable", "Run cannot be cancelled"),
    "CancelInvalid": (422, "validation-error", "Invalid request"),
}


async def send_decision(client: Client, run_id: str, signal: DecisionSignal) -> RunStatus:
    return await _update(client, run_id, "decide", signal, "decision")


async def send_cancel(client: Client, run_id: str, request: CancelRequest) -> RunStatus:
    return await _update(client, run_id, "cancel", request, "cancellation")


async def _update(client: Client, run_id: str, name: str, arg: Any, what: str) -> RunStatus:
    handle = client.get_workflow_handle(run_id)
    try:
        async with asyncio.timeout(UPDATE_PATIENCE_SECONDS):
            return await handle.execute_update(name, arg, result_type=RunStatus)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from None
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise RunClosed(run_id) from exc
        raise _unavailable(what) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise _unavailable(what) from exc


class RunClosed(Exception):
    """The run's workflow is closed (or gone): the caller looks at the books instead."""


def _refusal(exc: WorkflowUpdateFailedError) -> Problem:
    cause = exc.cause
    kind = cause.type if isinstance(cause, ApplicationError) else None
    status, slug, title = REFUSALS.get(kind or "", (409, "decision-conflict", "Not taken"))
    detail = cause.message if isinstance(cause, ApplicationError) else str(exc)
    detail = detail[:1].upper() + detail[1:] + "."
    errors = None
    if status == 422:
        field = (
            "reason" if kind == "CancelInvalid" else "comment" if "comment" in detail else "role"
        )
        errors = [{"field": field, "message": detail}]
    return Problem(status, slug, title, detail, errors)


def _unavailable(what: str) -> Problem:
    return Problem(
        503,
        "temporal-unavailable",
        "Run unavailable",
        f"The run did not answer in time; the {what} may still be taken when it is back. "
        "Read the run before sending it again: a repeated decision is refused (409) once the "
        "first is recorded.",
    )


def recorded_input(run: Run) -> RunInput:
    return value_to_type(RunInput, run.snapshot)


async def _start_recorded_milestone_run(client: Client, task_queue: str, run: Run) -> object:
    return await start_run(client, task_queue, recorded_input(run))


# Run kind → how the reconciler starts a run recorded but never started, from its recorded input.
STARTERS = {"milestone": _start_recorded_milestone_run}
