"""Milestone runs as Temporal sees them: their frozen input, their ids, starting and querying."""

import asyncio
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
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
from domain.lifecycle import TERMINAL_STAGES
from domain.money import format_minor
from domain.times import iso
from services.change_orders import start_change_order
from services.closeouts import start_closeout
from services.encounter_sign_offs import start_sign_off as start_encounter_sign_off
from services.engagements import approval_policy
from services.errors import Problem
from services.time_sign_offs import start_sign_off
from workflows import search_attributes as sa
from workflows.change_order_contracts import ChangeOrderInput
from workflows.closeout_contracts import CloseoutInput
from workflows.contracts import CancelRequest, DecisionSignal, DependencySpec, RunInput, RunStatus
from workflows.encounter_sign_off import EncountersInput
from workflows.milestone_run import MilestoneRun
from workflows.time_sign_off import TimesheetInput


def canonical_hash(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def milestone_run_id(milestone: Milestone, idempotency_key: str) -> str:
    """``milestone:<engagement id>:<milestone key>:<hash>``, readable in the Temporal UI and
    searchable by prefix (``WorkflowId STARTS_WITH "milestone:eng_…:"``).

    Derived from the milestone and the trigger's key, so a retried trigger can never start a
    second run. ``:`` separates because keys may hold ``.``, ``-`` and ``_`` and a ``/`` would
    not fit in ``/v1/runs/{run_id}``; the key is cut to 48 characters so the id fits its column
    (the hash, of the milestone's id and the key, keeps it unique).
    """
    digest = hashlib.sha256(f"{milestone.id}\n{idempotency_key}".encode()).hexdigest()[:12]
    return f"milestone:{milestone.engagement_id}:{milestone.key[:48]}:{digest}"


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
        deadline=iso(milestone.deadline),
        clawback=milestone.clawback,
        success_fee=milestone.success_fee,
        confirmation_id=body.get("confirmation_id"),
        # An SLA period, like a filing, is billed on its own without claiming the milestone.
        repeatable=milestone.repeatable or milestone.kind == "sla",
        period=body.get("period"),
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
            static_details=_static_details(run),
        )
    except WorkflowAlreadyStartedError:
        return handle(client, run.run_id)


def _static_details(run: RunInput) -> str:
    """The run's frozen terms, in Markdown, under its summary in the Temporal UI."""
    gates = [
        f"`{d.milestone_key}`"
        + (f" (`{d.kpi['metric']} {d.kpi['op']} {d.kpi['threshold']}`)" if d.kpi else "")
        for d in run.depends_on
    ]
    kpis = ", ".join(f"`{name}` = {value}" for name, value in run.kpis.items())
    return "\n\n".join(
        [
            f"**Engagement** `{run.engagement_id}`, customer `{run.customer_id}`, "
            f"trigger `{run.trigger_id}`",
            f"**Sign-off by** {', '.join(f'`{role}`' for role in run.policy.roles) or 'criteria'}",
            f"**Depends on** {', '.join(gates) or 'nothing'}",
            f"**KPIs reported** {kpis or 'none'}",
            *([f"**Confirmation** `{run.confirmation_id}`"] if run.confirmation_id else []),
            *([f"**SLA period** `{run.period}`"] if run.period else []),
        ]
    )


def handle(client: Client, run_id: str) -> WorkflowHandle[MilestoneRun, RunStatus]:
    return client.get_workflow_handle_for(MilestoneRun.run, run_id)


async def query_status(client: Client, run_id: str) -> RunStatus:
    return await handle(client, run_id).query(MilestoneRun.status)


async def read_status(client: Client, run_id: str, stage: str) -> RunStatus:
    """The run's status. One whose recorded ``stage`` says it ended is read from what its
    workflow returned, which Temporal keeps with the closed workflow: a query would make a
    worker replay the whole history. A run still open, still finishing, or closed without
    returning (failed, terminated) is asked."""
    run = handle(client, run_id)
    if stage in TERMINAL_STAGES:
        described = await run.describe()
        if described.status == WorkflowExecutionStatus.COMPLETED:
            return await run.result()
    return await run.query(MilestoneRun.status)


# ---- decisions and cancellations: Updates, answered with the workflow's own judgement ---------

# Refusal type (raised by the workflow's validators) → HTTP status and problem type.
REFUSALS = {
    "DecisionForbidden": (403, "forbidden", "Forbidden"),
    "DecisionConflict": (409, "decision-conflict", "Decision not taken"),
    "DecisionInvalid": (422, "validation-error", "Invalid request"),
    "CancelConflict": (409, "not-cancellable", "Run cannot be cancelled"),
    "CancelInvalid": (422, "validation-error", "Invalid request"),
}


async def send_decision(
    client: Client, run_id: str, signal: DecisionSignal, patience: float
) -> RunStatus:
    """The run's verdict on the decision; 503 when it does not answer within ``patience``
    seconds (its worker is down)."""
    return await _update(client, run_id, "decide", signal, "decision", patience)


async def send_cancel(
    client: Client, run_id: str, request: CancelRequest, patience: float
) -> RunStatus:
    return await _update(client, run_id, "cancel", request, "cancellation", patience)


async def _update(
    client: Client, run_id: str, name: str, arg: Any, what: str, patience: float
) -> RunStatus:
    handle = client.get_workflow_handle(run_id)
    try:
        async with asyncio.timeout(patience):
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


async def _start_recorded_closeout(client: Client, task_queue: str, run: Run) -> object:
    return await start_closeout(client, task_queue, value_to_type(CloseoutInput, run.snapshot))


async def _start_recorded_change_order(client: Client, task_queue: str, run: Run) -> object:
    order = value_to_type(ChangeOrderInput, run.snapshot)
    return await start_change_order(client, task_queue, order)


async def _start_recorded_timesheet(client: Client, task_queue: str, run: Run) -> object:
    sheet = value_to_type(TimesheetInput, run.snapshot)
    return await start_sign_off(client, task_queue, sheet)


async def _start_recorded_encounters(client: Client, task_queue: str, run: Run) -> object:
    batch = value_to_type(EncountersInput, run.snapshot)
    return await start_encounter_sign_off(client, task_queue, batch)


# Run kind → how the reconciler starts a run recorded but never started, from its recorded input.
STARTERS = {
    "milestone": _start_recorded_milestone_run,
    "closeout": _start_recorded_closeout,
    "change_order": _start_recorded_change_order,
    "timesheet": _start_recorded_timesheet,
    "encounters": _start_recorded_encounters,
}
