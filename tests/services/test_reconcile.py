"""The reconciler against a real Temporal dev server and worker, on both databases: a trigger,
a close-out or a change order recorded but never started is started, a terminated run's claim is
released, and stale claims from older versions are handed back."""

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from db.models import AuditEvent, Engagement, Milestone, Run
from services.callers import Caller
from services.change_inputs import ChangeOrderIn, CloseoutIn
from services.change_orders import propose
from services.closeouts import request_closeout
from services.reconcile import reconcile
from services.runs import STARTERS
from services.triggers import accept_trigger
from tests.conftest_stack import Example
from workflows.change_order_contracts import ChangeOrderInput

ADMIN = Caller("admin", "admin")
NOW = timedelta(0)


def record_trigger(example: Example, key: str) -> str:
    """Accepted and committed, as when Temporal was down and the client never retried."""
    with example.stack.sessions() as session:
        data = {
            "source": "test",
            "completion_percent": "100",
            "kpis": {},
            "evidence_ids": [],
            "external_ref": None,
            "note": None,
        }
        accepted = accept_trigger(session, ADMIN, example.milestone(key), str(uuid.uuid4()), data)
    return accepted.run.run_id


def record_closeout(example: Example) -> str:
    """Recorded and committed, as when the API died before it could start the workflow."""
    waive = [{"milestone": k, "reason": "Descoped"} for k in ("phase-1", "phase-2", "phase-3")]
    body = CloseoutIn.model_validate({"waive": waive})
    with example.stack.sessions() as session:
        return request_closeout(session, ADMIN, example.engagement["id"], body).run_id


def record_change_order(example: Example) -> ChangeOrderInput:
    """Recorded and committed, as when Temporal was down and the admin never sent it again."""
    changes = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}
    body = ChangeOrderIn.model_validate({"reason": "Second cutover", "changes": changes})
    with example.stack.sessions() as session:
        return propose(session, ADMIN, example.engagement["id"], body).order


async def run_pass(example: Example, grace: timedelta = NOW):
    stack = example.stack
    return await reconcile(stack.sessions, stack.temporal, stack.task_queue, STARTERS, grace=grace)


def milestone(example: Example, key: str) -> Milestone:
    with example.stack.sessions() as session:
        return session.get_one(Milestone, example.milestone(key))


async def test_a_trigger_recorded_but_never_started_is_started_with_its_recorded_input(
    example: Example,
):
    run_id = record_trigger(example, "phase-1")

    report = await run_pass(example)

    assert run_id in report.started
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert status["amounts"]["gross_minor"] == 3_000_000
    with example.stack.sessions() as session:
        kinds = session.scalars(select(AuditEvent.kind).where(AuditEvent.run_id == run_id)).all()
    assert "run_started_late" in kinds
    assert run_id not in (await run_pass(example)).started  # started once


async def test_a_closeout_recorded_but_never_started_is_started_with_its_recorded_input(
    example: Example,
):
    run_id = record_closeout(example)

    report = await run_pass(example)

    assert run_id in report.started
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert (status["kind"], sorted(status["pending_roles"])) == (
        "closeout",
        ["client_ap", "delivery_lead"],
    )
    assert (await example.refresh())["status"] == "closing"
    assert run_id not in (await run_pass(example)).started  # started once


async def test_a_change_order_recorded_but_never_started_is_started_with_its_recorded_input(
    example: Example,
):
    order = record_change_order(example)

    report = await run_pass(example)

    assert order.run_id in report.started
    status = await example.wait_for_stage(order.run_id, "awaiting_approval")
    assert (status["kind"], sorted(status["pending_roles"])) == (
        "change_order",
        ["client_ap", "delivery_lead"],
    )
    shown = await example.stack.get(f"/v1/change-orders/{order.change_order_id}")
    assert shown.json()["status"] == "proposed"


async def test_a_run_younger_than_the_grace_period_is_left_to_its_own_start(example: Example):
    run_id = record_trigger(example, "phase-1")

    report = await run_pass(example, grace=timedelta(minutes=5))

    assert run_id not in report.started
    with example.stack.sessions() as session:
        assert session.get_one(Run, run_id).stage == "received"


async def test_a_terminated_run_is_ended_and_its_milestone_released(example: Example):
    response = await example.trigger("phase-1")
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    await example.stack.temporal.get_workflow_handle(run_id).terminate("operator cleanup")

    report = await run_pass(example)

    assert run_id in report.ended
    with example.stack.sessions() as session:
        row = session.get_one(Run, run_id)
        assert (row.stage, row.outcome_detail) == (
            "cancelled",
            "workflow terminated without recording its end",
        )
    assert milestone(example, "phase-1").open_run_id is None
    again = await example.trigger("phase-1")
    assert again.status_code == 202, again.text


async def test_claims_left_by_runs_that_ended_without_releasing_them_are_released(
    example: Example,
):
    response = await example.trigger("phase-1")
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    await example.stack.temporal.get_workflow_handle(run_id).terminate("as an older version did")
    with example.stack.sessions.begin() as session:  # the books as an older version left them
        session.execute(update(Run).where(Run.id == run_id).values(stage="cancelled"))
        session.execute(
            update(Engagement)
            .where(Engagement.id == example.engagement["id"])
            .values(status="closing")
        )

    report = await run_pass(example)

    assert {example.milestone("phase-1"), example.engagement["id"]} <= set(report.released)
    assert milestone(example, "phase-1").open_run_id is None
    with example.stack.sessions() as session:
        assert session.get_one(Engagement, example.engagement["id"]).status == "active"
