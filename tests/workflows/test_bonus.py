"""Bonus milestones on the time-skipping server: the deadline, and billing into a clawback watch."""

import asyncio
from contextlib import suppress
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from api.example import platform_migration
from db.models import AuditEvent, InvoiceLine, Milestone
from domain.times import iso
from tests.workflows.conftest import Harness
from workflows.clawback_watch import ClawbackWatch, watch_id_for
from workflows.watch_contracts import WatchStatus

STANDARD = platform_migration("cus", "lead", "client", "lead_backup", "client_backup")["milestones"]


def launch_bonus(**changes: Any) -> dict[str, Any]:
    """The brief's example: 5,000.00 for an error rate of at most 0.5% at launch, clawed back in
    full if a report within 90 days shows the rate broken."""
    return {
        "key": "launch-bonus",
        "name": "Launch quality bonus",
        "kind": "bonus",
        "fee_minor": 500_000,
        "trigger": "automatic",
        "acceptance_criteria": [
            {
                "id": "errors",
                "description": "Error rate at most 0.5% at launch",
                "metric": "error_rate_pct",
                "op": "<=",
                "threshold": "0.5",
            }
        ],
        "clawback": {
            "window": {"duration": "P90D"},
            "kpi": {"metric": "error_rate_pct", "op": "<=", "threshold": "0.5"},
            "percent": "100",
        },
        **changes,
    }


def with_bonus(harness: Harness, **changes: Any) -> str:
    harness.engage(milestones=[*STANDARD, launch_bonus(**changes)])
    return harness.milestone_id("launch-bonus")


def bonus_lines(harness: Harness, milestone_id: str) -> list[tuple[str, int]]:
    with harness.sessions() as session:
        rows = session.scalars(
            select(InvoiceLine).where(InvoiceLine.milestone_id == milestone_id)
        ).all()
        return sorted((line.kind, line.amount_minor) for line in rows)


async def test_a_bonus_triggered_after_its_deadline_closes_ineligible_without_a_charge(
    harness: Harness,
):
    launch = await harness.env.get_current_time() + timedelta(days=2)
    milestone_id = with_bonus(harness, deadline=iso(launch))
    await harness.skip(timedelta(days=3))

    run = await harness.trigger("launch-bonus", {"error_rate_pct": "0.3"})
    result = await harness.finish(run)

    assert (result.stage, result.outcome) == ("ineligible", "deadline_passed")
    assert f"after the deadline {iso(launch)}" in result.outcome_detail
    assert bonus_lines(harness, milestone_id) == []
    with harness.sessions() as session:
        milestone = session.get_one(Milestone, milestone_id)
        assert (milestone.status, milestone.billed_minor, milestone.open_run_id) == (
            "ineligible",
            0,
            None,
        )
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.run_id == run.id).order_by(AuditEvent.seq)
        ).all()
    assert kinds == ["trigger_received", "criteria_evaluated", "run_closed"]


async def test_an_automatic_bonus_before_its_deadline_bills_and_starts_its_clawback_watch(
    harness: Harness,
):
    launch = await harness.env.get_current_time() + timedelta(days=2)
    milestone_id = with_bonus(harness, deadline=iso(launch))

    run = await harness.trigger("launch-bonus", {"error_rate_pct": "0.4"})
    await harness.wait_for_stage(run, "billed")
    watch = harness.env.client.get_workflow_handle_for(
        ClawbackWatch.run, watch_id_for(milestone_id)
    )
    status = await watching(watch)
    # The run is billed: finishing it needs no skipped time, which would close the window.
    with harness.env.auto_time_skipping_disabled():
        result = await harness.finish(run)

    assert result.stage == "billed"
    assert result.details == {"clawback_watch_id": watch.id}
    assert bonus_lines(harness, milestone_id) == [
        ("milestone", 500_000),
        ("retention_withheld", -50_000),
    ]
    assert (status.stage, status.billed_minor, status.percent) == ("watching", 500_000, "100")
    assert status.bonus_run_id == run.id
    with harness.sessions() as session:
        started = session.scalars(
            select(AuditEvent).where(
                AuditEvent.run_id == watch.id, AuditEvent.kind == "clawback_watch_started"
            )
        ).one()
    assert started.data["window_ends_at"] == status.window_ends_at
    assert started.milestone_id == milestone_id
    # A watch left running would fire its 90-day timer with no worker in a later test.
    await watch.terminate("test over")


async def watching(watch: WorkflowHandle[Any, WatchStatus]) -> WatchStatus:
    """The watch's status once it exists and has computed its window (its first activity)."""
    for _ in range(200):
        with suppress(RPCError):  # not started yet: the billed run starts it last
            status = await watch.query(ClawbackWatch.status)
            if status.window_ends_at is not None:
                return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"clawback watch {watch.id} never opened its window")
