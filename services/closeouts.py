"""Close-outs: an engagement's final sign-off, after which its retention is released.

A request is checked and recorded (engagement ``closing``, a ``closeout`` runs row) in one commit;
``start_closeout`` then starts the ``EngagementCloseout`` workflow, which owns everything after.
A close-out whose workflow cannot be started is withdrawn (``abandon_closeout``).
"""

from dataclasses import asdict

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.models import ChangeOrder, Engagement, Milestone, Run
from db.types import utcnow
from domain.calendar import describe_span, parse_span
from domain.lifecycle import MilestoneStatus, RunStage
from services.access import load_engagement
from services.callers import Caller
from services.change_inputs import CloseoutIn
from services.engagements import approval_policy
from services.errors import Problem
from services.open_runs import open_milestone_runs
from services.run_signers import signers
from workflows import search_attributes as sa
from workflows.closeout import EngagementCloseout
from workflows.closeout_contracts import CloseoutInput, Waiver
from workflows.contracts import RunStatus

# Milestones that need no waiver: accepted, or taken out of the contract by a change order.
SETTLED = (MilestoneStatus.ACCEPTED, MilestoneStatus.REMOVED)


def request_closeout(
    session: Session, caller: Caller, engagement_id: str, body: CloseoutIn
) -> CloseoutInput:
    """Check the request, mark the engagement ``closing`` and record the run, in one commit.

    The engagement is claimed first (``active`` → ``closing`` under its row lock) so that two
    close-outs cannot both pass the checks; any refusal rolls everything back.
    """
    engagement = load_engagement(session, engagement_id, caller)
    claimed = session.execute(
        update(Engagement)
        .where(Engagement.id == engagement.id, Engagement.status == "active")
        .values(status="closing")
    ).rowcount
    if not claimed:
        session.rollback()
        status = session.get_one(Engagement, engagement.id).status
        raise Problem(
            409,
            "engagement-not-active",
            "Engagement not active",
            f"Engagement {engagement.id} is {status}; only an active engagement can be closed out.",
        )
    try:
        waivers = _checked_waivers(session, engagement, body)
        run_id = _next_run_id(session, engagement)
        closeout = CloseoutInput(
            run_id=run_id,
            engagement_id=engagement.id,
            customer_id=engagement.customer_id,
            engagement_name=engagement.name,
            currency=engagement.currency,
            policy=approval_policy(engagement),
            waivers=waivers,
            release_delay=engagement.retention_release_delay,
            note=body.note,
            requested_by=caller.actor,
        )
        session.add(
            Run(
                id=run_id,
                kind="closeout",
                milestone_id=None,
                engagement_id=engagement.id,
                trigger_id=None,
                snapshot=asdict(closeout),
            )
        )
        session.add_all(signers(run_id, closeout.policy))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return closeout


def _checked_waivers(session: Session, engagement: Engagement, body: CloseoutIn) -> list[Waiver]:
    """Every milestone accepted (or removed) or waived with a reason; none with an open run."""
    milestones = session.scalars(
        select(Milestone)
        .where(Milestone.engagement_id == engagement.id)
        .order_by(Milestone.position)
        .with_for_update()
    ).all()
    by_key = {m.key: m for m in milestones}
    errors = []
    for i, waiver in enumerate(body.waive):
        milestone = by_key.get(waiver.milestone)
        if milestone is None:
            message = f"the engagement has no milestone {waiver.milestone!r}"
        elif milestone.status in SETTLED:
            message = (
                f"milestone {waiver.milestone} is {milestone.status}; there is nothing to waive"
            )
        else:
            continue
        errors.append({"field": f"waive.{i}.milestone", "message": message})
    if errors:
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            "; ".join(e["message"] for e in errors),
            errors,
        )
    running = open_milestone_runs(session, engagement.id)
    open_runs = [
        f"{m.key} ({m.open_run_id or running[m.id]})"
        for m in milestones
        if m.open_run_id or m.id in running
    ]
    if open_runs:
        raise Problem(
            409,
            "open-run",
            "Milestones have open runs",
            f"Close-out waits until these runs close: {', '.join(open_runs)}.",
        )
    proposed = session.scalars(
        select(ChangeOrder.id).where(
            ChangeOrder.engagement_id == engagement.id, ChangeOrder.status == "proposed"
        )
    ).all()
    if proposed:
        raise Problem(
            409,
            "open-change-order",
            "Change order awaiting sign-off",
            f"Close-out waits until these change orders are decided: {', '.join(proposed)}.",
        )
    waived = {w.milestone: w.reason for w in body.waive}
    unaccepted = [m for m in milestones if m.status not in SETTLED and m.key not in waived]
    if unaccepted:
        keys = ", ".join(f"{m.key} ({m.status})" for m in unaccepted)
        raise Problem(
            409,
            "milestones-not-accepted",
            "Milestones not accepted",
            f"Every milestone must be accepted or waived with a reason; not accepted: {keys}.",
            [{"field": "waive", "message": f"milestone {m.key} is {m.status}"} for m in unaccepted],
        )
    return [Waiver(by_key[key].id, key, reason) for key, reason in waived.items()]


def _next_run_id(session: Session, engagement: Engagement) -> str:
    earlier = session.scalar(
        select(func.count())
        .select_from(Run)
        .where(Run.engagement_id == engagement.id, Run.kind == "closeout")
    )
    return f"closeout:{engagement.id}:{(earlier or 0) + 1}"


def abandon_closeout(session: Session, closeout: CloseoutInput) -> None:
    """Undo a close-out whose workflow could not be started: the engagement is active again.

    The runs row stays, marked ``cancelled``, so its id is never reused and a workflow that did
    start after all refuses to act (see ``activities.closeout.load_closeout``).
    """
    session.rollback()
    withdrawn = session.execute(
        update(Run)
        .where(Run.id == closeout.run_id, Run.stage == RunStage.RECEIVED)
        .values(
            stage=RunStage.CANCELLED,
            outcome="not_started",
            outcome_detail="Temporal could not be reached; the close-out was withdrawn",
            closed_at=utcnow(),
        )
    ).rowcount
    if withdrawn:
        session.execute(
            update(Engagement)
            .where(Engagement.id == closeout.engagement_id, Engagement.status == "closing")
            .values(status="active")
        )
    session.commit()


async def start_closeout(
    client: Client, task_queue: str, closeout: CloseoutInput
) -> WorkflowHandle[EngagementCloseout, RunStatus]:
    """Start the close-out's workflow; starting it again is a no-op."""
    waived = f", {len(closeout.waivers)} milestone(s) waived" if closeout.waivers else ""
    delay = parse_span(closeout.release_delay)
    warranty = f", retention released {describe_span(delay)} after sign-off" if delay else ""
    try:
        return await client.start_workflow(
            EngagementCloseout.run,
            closeout,
            id=closeout.run_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ENGAGEMENT_ID, closeout.engagement_id),
                    SearchAttributePair(sa.CUSTOMER_ID, closeout.customer_id),
                    SearchAttributePair(sa.MILESTONE_KEY, "closeout"),
                    SearchAttributePair(sa.STAGE, "received"),
                ]
            ),
            static_summary=f"close-out: {closeout.engagement_name}{waived}{warranty}",
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(EngagementCloseout.run, closeout.run_id)
