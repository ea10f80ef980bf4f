"""Races between decisions, and between a decision and a cancellation, on a real Temporal dev
server: the time-skipping test server fails a workflow task that cancels an activity completing
in that same task (sdk-java 2391), which is exactly the race a cancel landing as a decision's
recording ends makes, and these tests need no skipped time. Each race is run several times: its
interleaving differs from one try to the next."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from db.models import Decision
from tests.workflows.conftest import Harness, harness_on
from tests.workflows.test_milestone_run import audit_kinds
from tests.workflows.test_way_out import cancel, cancel_now, decide
from workflows.contracts import RunStatus

TRIES = 4


@pytest.fixture(params=["sqlite", "postgresql"])
async def live(
    request: pytest.FixtureRequest, dev_server: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with harness_on(dev_server, request.param, tmp_path) as harness:
        yield harness


def recorded(h: Harness, run_id: str) -> list[tuple[str, str]]:
    with h.sessions() as session:
        query = select(Decision.role, Decision.decision).where(Decision.run_id == run_id)
        return [tuple(row) for row in session.execute(query)]


async def test_of_racing_approve_and_reject_for_one_role_exactly_one_is_taken(live: Harness):
    for _ in range(TRIES):
        live.engage()
        run = await live.trigger("phase-1")
        await live.wait_for_stage(run, "awaiting_approval")

        results = await asyncio.gather(
            decide(live, run, "client_ap", "client", "approve"),
            decide(live, run, "client_ap", "client", "reject"),
            decide(live, run, "client_ap", "client", "approve"),
            return_exceptions=True,
        )

        [taken] = [r for r in results if isinstance(r, RunStatus)]
        assert sum(isinstance(r, WorkflowUpdateFailedError) for r in results) == 2
        [decision] = taken.decisions
        if decision.decision == "approve":  # the lead is still to decide: end it here
            await cancel(run)
        ended = await live.finish(run)
        assert ended.stage == ("rejected" if decision.decision == "reject" else "cancelled")


async def test_a_cancel_that_races_the_recording_of_a_decision_ends_the_run(live: Harness):
    """The cancel lands while the approval is being recorded, or just as its recording
    completes (then the SDK returns the activity's result instead of raising): either way the
    run ends cancelled, with the decision recorded or audited as ignored, never both."""
    for _ in range(TRIES):
        live.engage()
        run = await live.trigger("phase-1")
        await live.wait_for_stage(run, "awaiting_approval")
        await decide(live, run, "delivery_lead", "lead")

        ended = await asyncio.wait_for(cancel_now(run), 15)

        assert ended.stage == "cancelled"
        assert (await live.finish(run)).stage == "cancelled"
        ignored = audit_kinds(live, run.id).count("decision_ignored")
        assert len(recorded(live, run.id)) + ignored == 1
