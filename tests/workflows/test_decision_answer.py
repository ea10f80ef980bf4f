"""A decision's Update is answered as soon as the run has taken it, not once the activity that
records it has finished: the approver waits one round trip, and the recording follows."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from db.models import Decision
from tests.workflows.conftest import Harness
from tests.workflows.holding import HoldActivity, holding
from tests.workflows.test_way_out import decide, refusal


@pytest.fixture(params=["sqlite", "postgresql"])
async def recording_held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Harness, HoldActivity]]:
    async with holding("record_decision", request.param, time_skipping, tmp_path) as held:
        yield held


def recorded_roles(h: Harness, run_id: str) -> list[str]:
    with h.sessions() as session:
        query = select(Decision.role).where(Decision.run_id == run_id).order_by(Decision.id)
        return list(session.scalars(query))


async def test_an_approval_is_answered_while_it_is_still_being_recorded_then_recorded_and_billed(
    recording_held: tuple[Harness, HoldActivity],
):
    harness, hold = recording_held
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")

    status = await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)

    assert recorded_roles(harness, run.id) == []  # its recording is held in flight
    assert status.pending_roles == ["client_ap"]
    assert [(d.role, d.via) for d in status.decisions] == [("delivery_lead", "approver")]

    hold.release.set()
    await decide(harness, run, "client_ap", "client")
    assert (await harness.finish(run)).stage == "billed"
    assert recorded_roles(harness, run.id) == ["delivery_lead", "client_ap"]


async def test_a_second_decision_for_a_role_being_recorded_is_refused_at_once(
    recording_held: tuple[Harness, HoldActivity],
):
    harness, hold = recording_held
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    await decide(harness, run, "delivery_lead", "lead")

    with pytest.raises(WorkflowUpdateFailedError) as again:
        await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)
    assert refusal(again) == "DecisionConflict: role 'delivery_lead' has already decided"
    hold.release.set()
