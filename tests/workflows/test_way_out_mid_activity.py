"""A run cancelled while one of its activities is in flight still ends recorded: the activity is
held open by an interceptor, so the cancellation lands mid-activity every time (time-skipping
server, real activities on each database)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from db.models import Milestone, Run
from tests.workflows.conftest import Harness
from tests.workflows.holding import HoldActivity, holding
from tests.workflows.test_way_out import CANCEL, cancel_now
from workflows.sign_off import NO_REASON


@pytest.fixture(params=["sqlite", "postgresql"])
async def held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Harness, HoldActivity]]:
    """A harness whose worker holds ``open_run`` (the run's first activity) in flight."""
    async with holding("open_run", request.param, time_skipping, tmp_path) as held:
        yield held


def ended(h: Harness, run_id: str) -> tuple[str, str | None, str | None]:
    with h.sessions() as session:
        run = session.get_one(Run, run_id)
        milestone = session.get_one(Milestone, run.milestone_id)
        return run.stage, run.outcome_detail, milestone.open_run_id


async def test_a_run_cancelled_in_temporal_mid_activity_ends_cancelled(
    held: tuple[Harness, HoldActivity],
):
    harness, hold = held
    run = await harness.trigger("phase-1")
    await asyncio.wait_for(hold.started.wait(), 10)

    await run.cancel()
    hold.release.set()

    with pytest.raises(WorkflowFailureError):
        await run.result()
    await harness.replay(run)
    assert ended(harness, run.id) == ("cancelled", NO_REASON, None)


async def test_a_run_an_admin_cancels_mid_activity_ends_cancelled_not_failed(
    held: tuple[Harness, HoldActivity],
):
    harness, hold = held
    run = await harness.trigger("phase-1")
    await asyncio.wait_for(hold.started.wait(), 10)

    asking = asyncio.create_task(cancel_now(run))
    await asyncio.sleep(0.2)  # the Update is accepted while open_run is still held
    hold.release.set()

    assert (await asking).stage == "cancelled"
    await harness.finish(run)
    detail = f"cancelled by {CANCEL.by}: {CANCEL.reason}"
    assert ended(harness, run.id) == ("cancelled", detail, None)
