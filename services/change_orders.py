"""Change orders: proposed changes to an engagement's unbilled milestones and its T&M terms, under
dual sign-off.

A proposal is checked against the milestones as they are, recorded (change order, its runs row,
audit event) in one commit, and handed to a ``ChangeOrderApproval`` workflow by
``start_change_order`` afterwards, so no transaction waits on Temporal; the engagement itself
changes only when both roles approve (``activities.change_orders``), and then as a new version.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
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
from temporalio.converter import value_to_type
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.audit import append_event
from db.models import ChangeOrder, Engagement, Milestone, MilestoneDependency, Run, new_id
from domain.change_orders import INVALID, MilestoneState, Refusal, check_changes
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms
from services.access import load_engagement
from services.callers import Caller
from services.change_inputs import ChangeOrderIn, ChangesIn
from services.engagements import approval_policy
from services.errors import Problem
from services.open_runs import open_milestone_runs
from services.run_signers import signers
from services.time_term_changes import plan_terms_change
from workflows import search_attributes as sa
from workflows.change_order import ChangeOrderApproval
from workflows.change_order_contracts import ChangeOrderInput
from workflows.contracts import RunStatus


@dataclass
class Proposal:
    order: ChangeOrderInput
    status: str
    new: bool


def propose(session: Session, caller: Caller, engagement_id: str, body: ChangeOrderIn) -> Proposal:
    """Check and record a proposal in one transaction, under the engagement's row lock."""
    load_engagement(session, engagement_id, caller)
    engagement = session.scalars(
        select(Engagement)
        .where(Engagement.id == engagement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    changes = body.changes.as_changes()
    pending = session.scalar(
        select(ChangeOrder).where(
            ChangeOrder.engagement_id == engagement.id, ChangeOrder.status == "proposed"
        )
    )
    if pending is not None and (pending.reason, pending.changes) == (body.reason, changes):
        run = session.get_one(Run, pending.run_id)  # a retry, e.g. after a 503
        return Proposal(value_to_type(ChangeOrderInput, run.snapshot), pending.status, new=False)
    if engagement.status != "active":
        raise Problem(
            409,
            "engagement-not-active",
            "Engagement not active",
            f"Engagement {engagement.id} is {engagement.status}; it takes no change orders.",
        )
    if pending is not None:
        raise Problem(
            409,
            "change-order-pending",
            "Another change order is pending",
            f"Change order {pending.id} is still awaiting sign-off; one change order at a time.",
        )
    milestones = session.scalars(
        select(Milestone).where(Milestone.engagement_id == engagement.id)
    ).all()
    refuse(
        check_changes(milestone_states(session, milestones), changes)
        + _success_fee_terms(body.changes, engagement.currency)
        + _time_terms(session, engagement, changes)
    )

    order_id = new_id("co")
    order = ChangeOrderInput(
        run_id=f"change-order:{engagement.id}:{order_id}",
        change_order_id=order_id,
        engagement_id=engagement.id,
        customer_id=engagement.customer_id,
        reason=body.reason,
        changes=changes,
        base_version=engagement.version,
        policy=approval_policy(engagement),
    )
    session.add(
        ChangeOrder(
            id=order_id,
            engagement_id=engagement.id,
            reason=body.reason,
            changes=changes,
            run_id=order.run_id,
            base_version=engagement.version,
            proposed_by=caller.actor,
        )
    )
    session.add(
        Run(
            id=order.run_id,
            kind="change_order",
            engagement_id=engagement.id,
            snapshot=asdict(order),
            stage="received",
        )
    )
    session.add_all(signers(order.run_id, order.policy))
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="change_order_proposed",
        run_id=order.run_id,
        data={
            "change_order_id": order_id,
            "reason": body.reason,
            "changes": changes,
            "base_version": engagement.version,
            "proposed_by": caller.actor,
        },
    )
    session.commit()
    return Proposal(order, "proposed", new=True)


def milestone_states(session: Session, milestones: Sequence[Milestone]) -> list[MilestoneState]:
    """The engagement's milestones as the change-order checks see them."""
    keys = {m.id: m.key for m in milestones}
    running = open_milestone_runs(session, milestones[0].engagement_id) if milestones else {}
    edges = session.execute(
        select(MilestoneDependency.milestone_id, MilestoneDependency.depends_on_id).where(
            MilestoneDependency.milestone_id.in_(keys)
        )
    ).all()
    return [
        MilestoneState(
            key=m.key,
            status=m.status,
            billed_minor=m.billed_minor,
            accepted_percent=m.accepted_percent,
            open_run_id=m.open_run_id or running.get(m.id),
            depends_on=tuple(keys[dep] for ms, dep in edges if ms == m.id),
            trigger=m.trigger_mode,
            machine_checkable=any(c.get("metric") for c in m.criteria),
            kind=m.kind,
            clawback=m.clawback is not None,
        )
        for m in milestones
    ]


def refuse(refusals: list[Refusal]) -> None:
    """Invalid requests are 422s; requests the milestones' state forbids are 409s."""
    invalid = [r for r in refusals if r.kind == INVALID]
    shown = invalid or refusals
    if not shown:
        return
    errors = [{"field": r.field, "message": r.message} for r in shown]
    detail = "; ".join(r.message for r in shown)
    if invalid:
        raise Problem(422, "validation-error", "Invalid request", detail, errors)
    raise Problem(
        409,
        "milestone-not-unbilled",
        "Milestone not unbilled",
        f"A change order may change unbilled milestones only: {detail}",
        errors,
    )


def _success_fee_terms(changes: ChangesIn, currency: str) -> list[Refusal]:
    refusals = []
    for i, milestone in enumerate(changes.add):
        if milestone.success_fee is not None:
            try:
                parse_success_fee_terms(milestone.success_fee, currency)
            except InvalidSuccessFee as exc:
                refusals.append(Refusal(INVALID, f"changes.add.{i}.success_fee", str(exc)))
    return refusals


def _time_terms(session: Session, engagement: Engagement, changes: dict[str, Any]) -> list[Refusal]:
    if "time_and_materials" not in changes:
        return []
    return plan_terms_change(session, engagement, changes["time_and_materials"]).refusals


async def start_change_order(
    client: Client, task_queue: str, order: ChangeOrderInput
) -> WorkflowHandle[ChangeOrderApproval, RunStatus]:
    """Start the order's sign-off; starting an already started (or finished) one is a no-op."""
    try:
        return await client.start_workflow(
            ChangeOrderApproval.run,
            order,
            id=order.run_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ENGAGEMENT_ID, order.engagement_id),
                    SearchAttributePair(sa.CUSTOMER_ID, order.customer_id),
                    SearchAttributePair(sa.MILESTONE_KEY, "change-order"),
                    SearchAttributePair(sa.STAGE, "received"),
                ]
            ),
            static_summary=order.subject.title,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(ChangeOrderApproval.run, order.run_id)
