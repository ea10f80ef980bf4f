"""Starting, querying and signalling milestone runs: the API's only bridge to Temporal."""

import asyncio
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.views import iso
from db.models import Engagement, Milestone, MilestoneDependency
from domain.money import format_minor
from workflows import search_attributes as sa
from workflows.contracts import ApprovalPolicy, DependencySpec, RunInput, RunStatus
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
        deadline=iso(milestone.deadline),
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


async def wait_for_decision(client: Client, run_id: str, role: str) -> RunStatus:
    """After a signal, wait briefly until the run shows the decision (or has moved on)."""
    status = await query_status(client, run_id)
    for _ in range(100):
        if any(d.role == role for d in status.decisions) or role not in status.pending_roles:
            break
        await asyncio.sleep(0.05)
        status = await query_status(client, run_id)
    return status
