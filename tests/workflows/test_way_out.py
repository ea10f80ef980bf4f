"""Every run has a way out: cancelled or failed runs end in a recorded stage and release their
claims (time-skipping server, real activities on SQLite)."""

import asyncio

import pytest
from sqlalchemy import select, text
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from db.models import AuditEvent, ChangeOrder, Engagement, Milestone, Notification, Run
from tests.workflows.conftest import Harness
from tests.workflows.test_closeout import accept, close_out
from workflows.contracts import CancelRequest, DecisionSignal, RunStatus
from workflows.milestone_run import MilestoneRun
from workflows.sign_off import NO_REASON

CANCEL = CancelRequest(reason="Delivered under the wrong contract", by="admin")


def milestone(h: Harness, key: str) -> Milestone:
    with h.sessions() as session:
        return session.get_one(Milestone, h.milestone_id(key))


def run_row(h: Harness, run_id: str) -> Run:
    with h.sessions() as session:
        return session.get_one(Run, run_id)


def closed_events(h: Harness, run_id: str) -> list[dict]:
    with h.sessions() as session:
        query = select(AuditEvent.data).where(
            AuditEvent.run_id == run_id, AuditEvent.kind == "run_closed"
        )
        return list(session.scalars(query))


async def idle(handle: WorkflowHandle) -> None:
    """Wait until the run has no activity in flight. The time-skipping server fails a workflow
    task that cancels an activity completing in that same task (sdk-java 2391; the real server
    accepts it), so tests on it cancel an idle run unless they hold the activity on purpose."""
    for _ in range(200):
        if not (await handle.describe()).raw_description.pending_activities:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the run kept an activity in flight for 10 s")


async def cancel(handle: WorkflowHandle, request: CancelRequest = CANCEL) -> RunStatus:
    """An admin's cancellation, once the run is idle (see ``idle``)."""
    await idle(handle)
    return await cancel_now(handle, request)


async def cancel_now(handle: WorkflowHandle, request: CancelRequest = CANCEL) -> RunStatus:
    return await handle.execute_update(MilestoneRun.cancel, request)


async def decide(
    h: Harness, handle: WorkflowHandle, role: str, person: str, decision: str = "approve"
) -> RunStatus:
    signal = DecisionSignal(
        role=role, principal_id=h.people[person], decision=decision, comment="not as agreed"
    )
    return await handle.execute_update(MilestoneRun.decide_now, signal)


def refusal(err: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str:
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    return f"{cause.type}: {cause.message}"


async def test_a_cancelled_run_releases_its_milestone_for_a_new_trigger(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")

    status = await cancel(run)

    assert (status.stage, status.outcome) == ("cancelled", "cancelled")
    assert status.outcome_detail == "cancelled by admin: Delivered under the wrong contract"
    released = milestone(harness, "phase-1")
    assert (released.open_run_id, released.status) == (None, "pending")
    assert run_row(harness, run.id).stage == "cancelled"
    assert closed_events(harness, run.id)[0]["released"]["milestone_status"] == "pending"
    assert (await harness.finish(run)).stage == "cancelled"
    again = await harness.trigger("phase-1")
    assert (await harness.wait_for_stage(again, "awaiting_approval")).stage == "awaiting_approval"


async def test_a_run_cancelled_in_temporal_ends_cancelled_and_releases_its_milestone(
    harness: Harness,
):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    await idle(run)

    await run.cancel()

    with pytest.raises(WorkflowFailureError):
        await run.result()
    await harness.replay(run)
    row = run_row(harness, run.id)
    assert (row.stage, row.outcome_detail) == ("cancelled", NO_REASON)
    assert milestone(harness, "phase-1").open_run_id is None


async def test_a_run_waiting_on_a_dependency_can_be_cancelled(harness: Harness):
    run = await harness.trigger("phase-2", {"error_rate_pct": "0.4"})
    await harness.wait_for_stage(run, "awaiting_approval")
    await decide(harness, run, "delivery_lead", "lead")
    await decide(harness, run, "client_ap", "client")
    await harness.wait_for_stage(run, "waiting_on_dependency")

    assert (await cancel(run)).stage == "cancelled"
    assert milestone(harness, "phase-2").open_run_id is None


async def test_a_cancellation_needs_a_reason(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")

    with pytest.raises(WorkflowUpdateFailedError) as blank:
        await cancel(run, CancelRequest(reason="  ", by="admin"))
    assert refusal(blank) == "CancelInvalid: a cancellation needs a reason"
    assert (await cancel(run)).stage == "cancelled"


def refuse_invoice_lines(h: Harness) -> None:
    """An integrity rule every invoice line breaks: a permanent error, as bad data would be."""
    with h.sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON invoice_lines "
                    "BEGIN SELECT RAISE(ABORT, 'invoice lines refused'); END"
                )
            )
        else:
            session.execute(
                text("ALTER TABLE invoice_lines ADD CONSTRAINT refuse CHECK (amount_minor = 0)")
            )


async def test_a_permanent_error_while_billing_fails_the_run_and_tells_the_operators(
    harness: Harness,
):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    refuse_invoice_lines(harness)
    await decide(harness, run, "delivery_lead", "lead")
    await decide(harness, run, "client_ap", "client")

    with pytest.raises(WorkflowFailureError):
        await run.result()

    await harness.replay(run)
    row = run_row(harness, run.id)
    assert row.stage == "failed"
    assert row.outcome_detail.startswith("post_billing gave up (PermanentError): IntegrityError")
    assert milestone(harness, "phase-1").open_run_id is None
    with harness.sessions() as session:
        notices = session.scalars(
            select(Notification).where(
                Notification.run_id == run.id, Notification.kind == "run_failed"
            )
        ).all()
    assert [(n.kind, n.recipient_id) for n in notices] == [("run_failed", "operators")]


async def test_a_decision_update_answers_with_the_recorded_decision(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")

    status = await decide(harness, run, "delivery_lead", "lead")

    assert status.pending_roles == ["client_ap"]
    assert [(d.role, d.via) for d in status.decisions] == [("delivery_lead", "approver")]
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await decide(harness, run, "delivery_lead", "lead")
    assert refusal(again) == "DecisionConflict: role 'delivery_lead' has already decided"
    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await decide(harness, run, "client_ap", "stranger")
    assert refusal(stranger).startswith("DecisionForbidden: principal")
    await cancel(run)


async def test_a_cancelled_closeout_hands_the_engagement_back(harness: Harness):
    await accept(harness, "phase-1", "phase-2", "phase-3")
    closeout = await close_out(harness)
    await harness.wait_for_stage(closeout, "awaiting_approval")

    assert (await cancel(closeout)).stage == "cancelled"
    await harness.finish(closeout)

    with harness.sessions() as session:
        assert session.get_one(Engagement, harness.engagement["id"]).status == "active"


async def test_a_cancelled_change_order_is_no_longer_pending(harness: Harness):
    order = await harness.propose({"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]})
    await harness.wait_for_stage(order, "awaiting_approval")

    assert (await cancel(order)).stage == "cancelled"
    await harness.finish(order)

    with harness.sessions() as session:
        row = session.scalar(select(ChangeOrder).where(ChangeOrder.run_id == order.id))
        assert row is not None and row.status == "cancelled"
