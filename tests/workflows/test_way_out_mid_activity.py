"""A run cancelled while one of its activities is in flight still ends recorded: the activity is
held open by an interceptor, so the cancellation lands mid-activity every time (time-skipping
server, real activities on each database)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from db.models import Milestone, Run
from db.session import make_engine, make_session_factory
from tests.conftest import database
from tests.workflows.conftest import Harness, seed
from tests.workflows.test_way_out import CANCEL, cancel
from worker import build_worker
from workflows.sign_off import NO_REASON


@dataclass
class HoldActivity(Interceptor):
    """Holds every attempt of one activity until ``release`` is set; ``started`` says one is
    in flight."""

    name: str
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        hold = self

        class Held(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                if activity.info().activity_type == hold.name:
                    hold.started.set()
                    await hold.release.wait()
                return await super().execute_activity(input)

        return Held(next)


@pytest.fixture(params=["sqlite", "postgresql"])
async def held(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Harness, HoldActivity]]:
    """A harness whose worker holds ``set_stage`` (the run's first stage change) in flight."""
    hold = HoldActivity("set_stage")
    with database(request.param, tmp_path) as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        people, engagement = seed(sessions)
        task_queue = f"tollgate-test-{uuid.uuid4()}"
        async with build_worker(time_skipping.client, sessions, task_queue, interceptors=[hold]):
            yield Harness(time_skipping, sessions, task_queue, people, engagement), hold
            hold.release.set()
        engine.dispose()


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

    asking = asyncio.create_task(cancel(run))
    await asyncio.sleep(0.2)  # the Update is accepted while set_stage is still held
    hold.release.set()

    assert (await asking).stage == "cancelled"
    await harness.finish(run)
    detail = f"cancelled by {CANCEL.by}: {CANCEL.reason}"
    assert ended(harness, run.id) == ("cancelled", detail, None)
