"""POST /v1/runs/{id}/cancel: an admin ends a run with a reason, and its milestone is free again."""

from sqlalchemy import select

from db.models import AuditEvent, Milestone
from tests.api.problems import assert_problem
from tests.conftest_stack import Example


async def waiting_run(example: Example, key: str = "phase-1") -> str:
    response = await example.trigger(key)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    return run_id


async def cancel(example: Example, run_id: str, reason: str = "Triggered by mistake", **kw):
    return await example.stack.post(f"/v1/runs/{run_id}/cancel", {"reason": reason}, **kw)


async def test_an_admin_cancels_a_waiting_run_and_the_milestone_takes_a_new_trigger(
    example: Example,
):
    run_id = await waiting_run(example)

    response = await cancel(example, run_id)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stage"], body["outcome_detail"]) == (
        "cancelled",
        "cancelled by admin: Triggered by mistake",
    )
    with example.stack.sessions() as session:
        milestone = session.get_one(Milestone, example.milestone("phase-1"))
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.run_id == run_id).order_by(AuditEvent.seq)
        ).all()
    assert (milestone.open_run_id, milestone.status) == (None, "pending")
    assert kinds[-1] == "run_closed"
    assert (await example.run(run_id))["stage"] == "cancelled"
    again = await example.trigger("phase-1")
    assert again.status_code == 202, again.text


async def test_cancelling_needs_the_admin_token_and_a_reason(example: Example):
    run_id = await waiting_run(example)

    assert_problem(await cancel(example, run_id, token=example.token("client")), 403)
    assert_problem(await cancel(example, run_id, reason="   "), 422, "reason")
    assert_problem(await cancel(example, "run-nope"), 404)
    assert (await example.run(run_id))["stage"] == "awaiting_approval"


async def test_a_closed_run_cannot_be_cancelled(example: Example):
    run_id = await waiting_run(example)
    rejected = await example.decide(run_id, "client_ap", "client", "reject", "Not as agreed")
    assert rejected.status_code == 202, rejected.text
    await example.wait_for_stage(run_id, "rejected")

    problem = assert_problem(await cancel(example, run_id), 409)

    assert "rejected" in problem["detail"]


async def test_a_decision_on_a_cancelled_run_is_a_conflict(example: Example):
    run_id = await waiting_run(example)
    assert (await cancel(example, run_id)).status_code == 200

    assert_problem(await example.decide(run_id, "delivery_lead", "lead"), 409)
