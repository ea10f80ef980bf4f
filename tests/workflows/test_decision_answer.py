"""A decision's Update is taken into the run's status and answered at once: the approver never
waits behind an activity the run has in flight, and the recording follows in arrival order."""

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
from tests.workflows.test_milestone_run import audit_kinds
from tests.workflows.test_way_out import cancel, cancel_now, decide, refusal

HeldHarness = tuple[Harness, HoldActivity]
CRITERIA_PASS = {"error_rate_pct": "0.4"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def recording_held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[HeldHarness]:
    async with holding("record_decision", request.param, time_skipping, tmp_path) as held:
        yield held


@pytest.fixture(params=["sqlite", "postgresql"])
async def entering_held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[HeldHarness]:
    """The run's stage change into approval is held: it is awaiting approval, yet busy. (A
    manual run enters approval in the activity that opens it; a run whose trigger mode is
    ``both``, as phase 2's, enters it with a stage change of its own once its criteria pass.)"""
    async with holding("set_stage", request.param, time_skipping, tmp_path) as held:
        yield held


def recorded_roles(h: Harness, run_id: str) -> list[str]:
    with h.sessions() as session:
        query = select(Decision.role).where(Decision.run_id == run_id).order_by(Decision.id)
        return list(session.scalars(query))


async def test_an_approval_is_answered_while_it_is_still_being_recorded_then_recorded_and_billed(
    recording_held: HeldHarness,
):
    harness, hold = recording_held
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")

    status = await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)

    assert recorded_roles(harness, run.id) == []  # its recording is held in flight
    assert status.pending_roles == ["client_ap"]
    assert [(d.role, d.via) for d in status.decisions] == [("delivery_lead", "approver")]
    second = await asyncio.wait_for(decide(harness, run, "client_ap", "client"), 10)
    assert second.pending_roles == []

    hold.release.set()
    assert (await harness.finish(run)).stage == "billed"
    assert recorded_roles(harness, run.id) == ["delivery_lead", "client_ap"]


async def test_a_second_decision_for_a_role_being_recorded_is_refused_at_once(
    recording_held: HeldHarness,
):
    harness, hold = recording_held
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    await decide(harness, run, "delivery_lead", "lead")

    with pytest.raises(WorkflowUpdateFailedError) as again:
        await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)
    assert refusal(again) == "DecisionConflict: role 'delivery_lead' has already decided"
    hold.release.set()
    await decide(harness, run, "client_ap", "client")
    assert (await harness.finish(run)).stage == "billed"
    assert recorded_roles(harness, run.id) == ["delivery_lead", "client_ap"]


async def test_a_decision_taken_while_a_run_checked_first_enters_approval_stays_decided(
    entering_held: HeldHarness,
):
    harness, hold = entering_held
    run = await harness.trigger("phase-2", CRITERIA_PASS)
    await harness.wait_for_stage(run, "awaiting_approval")  # shown; its stage change is held

    status = await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)
    assert status.pending_roles == ["client_ap"]

    hold.release.set()
    await decide(harness, run, "client_ap", "client")
    await harness.wait_for_stage(run, "waiting_on_dependency")  # phase 1 is not accepted
    assert recorded_roles(harness, run.id) == ["delivery_lead", "client_ap"]
    await cancel(run)
    await harness.finish(run)


async def test_a_decision_taken_but_not_yet_recorded_when_a_run_is_cancelled_is_audited_ignored(
    entering_held: HeldHarness,
):
    harness, hold = entering_held
    run = await harness.trigger("phase-2", CRITERIA_PASS)
    await harness.wait_for_stage(run, "awaiting_approval")
    await decide(harness, run, "delivery_lead", "lead")

    asking = asyncio.create_task(cancel_now(run))
    await asyncio.sleep(0.2)  # the cancel is accepted while the stage change is still held
    hold.release.set()

    ended = await asking
    assert (ended.stage, ended.decisions) == ("cancelled", [])
    await harness.finish(run)
    assert recorded_roles(harness, run.id) == []
    assert audit_kinds(harness, run.id).count("decision_ignored") == 1


@pytest.fixture(params=["sqlite", "postgresql"])
async def opening_held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[HeldHarness]:
    async with holding("open_run", request.param, time_skipping, tmp_path) as held:
        yield held


async def test_a_decision_that_arrives_while_a_manual_run_is_being_opened_is_taken(
    opening_held: HeldHarness,
):
    """A manual run's approval request goes out the moment open_run commits, before the run
    hears that it completed (or, should its worker die then, until open_run is retried): an
    approver who answers at once must not be refused."""
    harness, hold = opening_held
    run = await harness.trigger("phase-1")
    await asyncio.wait_for(hold.started.wait(), 10)

    status = await asyncio.wait_for(decide(harness, run, "delivery_lead", "lead"), 10)

    assert status.pending_roles == ["client_ap"]
    hold.release.set()
    await decide(harness, run, "client_ap", "client")
    assert (await harness.finish(run)).stage == "billed"
    assert recorded_roles(harness, run.id) == ["delivery_lead", "client_ap"]
