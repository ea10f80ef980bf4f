"""What the Temporal UI's "Current Details" says a run waits for, at each point of its life."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from tests.workflows.conftest import Harness
from tests.workflows.test_bonus import with_bonus
from tests.workflows.test_clawback_watch import watch_reports
from tests.workflows.test_closeout import WARRANTY, accept, close_out
from workflows.clawback_watch import ClawbackWatch, watch_id_for


@pytest.fixture
async def open_runs() -> AsyncIterator[list[WorkflowHandle]]:
    """Runs a test leaves waiting, terminated after it: the time-skipping server is shared, and a
    later test's skip must not wait on their timers."""
    handles: list[WorkflowHandle] = []
    yield handles
    for handle in handles:
        with contextlib.suppress(RPCError):  # it ended on its own
            await handle.terminate("test over")


async def details(handle: WorkflowHandle) -> str:
    """The Markdown the Temporal UI shows, read the way the UI reads it."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def details_saying(handle: WorkflowHandle, text: str) -> str:
    for _ in range(200):
        shown = await details(handle)
        if text in shown:
            return shown
        await asyncio.sleep(0.05)
    raise AssertionError(f"the details never said {text!r}; they say:\n{shown}")


async def test_after_escalation_the_backup_may_decide_and_the_client_faces_deemed_acceptance(
    harness: Harness,
):
    """First in this module: a later skip would wait for the deliveries earlier tests left."""
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    status = await harness.wait_for_stage(run, "awaiting_approval")
    escalation = datetime.fromisoformat(status.deadlines["escalate_at"])
    await harness.skip(escalation - await harness.env.get_current_time() + timedelta(minutes=1))

    shown = await details_saying(run, "(escalation)")

    client = next(line for line in shown.splitlines() if line.startswith("| `client_ap`"))
    assert f"{harness.people['client_backup']} (escalation)" in client
    assert f"deemed accepted at {status.deadlines['deemed_acceptance_at']}" in client
    lead = next(line for line in shown.splitlines() if line.startswith("| `delivery_lead`"))
    assert f"expires at {status.deadlines['expire_at']}" in lead  # silence never accepts for it
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client_backup")
    assert (await harness.finish(run)).stage == "billed"  # and its history replays


async def test_a_run_awaiting_approval_names_each_role_who_may_decide_and_the_next_deadline(
    harness: Harness, open_runs: list[WorkflowHandle]
):
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    open_runs.append(run)
    status = await harness.wait_for_stage(run, "awaiting_approval")

    shown = await details_saying(run, "Awaiting approval")

    assert "Milestone `phase-1`" in shown
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        row = next(line for line in shown.splitlines() if line.startswith(f"| `{role}`"))
        assert harness.people[person] in row
        assert f"reminder at {status.deadlines['reminder_at']}" in row


async def test_a_decision_leaves_only_the_roles_still_pending_and_says_who_decided(
    harness: Harness,
):
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")

    shown = await details_saying(run, "`delivery_lead` approved (approver")

    assert "| `delivery_lead`" not in shown
    assert "| `client_ap`" in shown
    await harness.decide(run, "client_ap", "client")
    assert (await harness.finish(run)).stage == "billed"
    assert (await details(run)).startswith("Milestone `phase-1`")
    assert "**Ended: billed**" in await details(run)


async def test_a_run_waiting_on_a_dependency_names_the_upstream_milestone(
    harness: Harness, open_runs: list[WorkflowHandle]
):
    run = await harness.trigger("phase-2", {"error_rate_pct": "0.4"})
    open_runs.append(run)
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")
    await harness.wait_for_stage(run, "waiting_on_dependency")

    shown = await details_saying(run, "waiting on upstream milestones")

    assert "- `phase-1` accepted" in shown


async def test_an_ended_run_says_how_it_ended_and_why(harness: Harness):
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "client_ap", "client", "reject", "The cut-over lost data")
    await harness.finish(run)

    shown = await details(run)

    assert "**Ended: rejected** — rejected by client_ap: The cut-over lost data" in shown


async def test_a_closeout_in_warranty_says_when_the_retention_is_released(
    harness: Harness, open_runs: list[WorkflowHandle]
):
    harness.engage(retention=WARRANTY)
    await accept(harness, "phase-1", "phase-2", "phase-3")
    closeout = await close_out(harness)
    open_runs.append(closeout)
    await harness.wait_for_stage(closeout, "awaiting_approval")
    assert "Close-out of" in await details_saying(closeout, "| `client_ap`")
    await harness.decide(closeout, "delivery_lead", "lead")
    await harness.decide(closeout, "client_ap", "client")
    status = await harness.wait_for_stage(closeout, "warranty")

    shown = await details_saying(closeout, "holding the retention")

    assert f"The retention (10,000.00 USD) is released on {status.deadlines['release_at']}" in (
        shown
    )


async def test_a_clawback_watch_says_which_kpi_it_watches_and_until_when(
    harness: Harness, open_runs: list[WorkflowHandle]
):
    milestone_id = with_bonus(harness)
    run = await harness.trigger("launch-bonus", {"error_rate_pct": "0.4"})
    await harness.wait_for_stage(run, "billed")
    watch = harness.env.client.get_workflow_handle_for(
        ClawbackWatch.run, watch_id_for(milestone_id)
    )
    open_runs.append(watch)
    status = await watch_reports(watch, 0)

    shown = await details_saying(watch, "**Watching**")

    assert f"until {status.window_ends_at}" in shown
    assert "`error_rate_pct <= 0.5`" in shown
    assert "claws back 100%" in shown
