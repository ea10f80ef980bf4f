"""The reconciler's Schedule on the dev server: a tick starts a trigger that was recorded while
Temporal was unreachable (both databases, real worker)."""

import uuid

import pytest
from temporalio.service import RPCError

from services.callers import Caller
from services.triggers import accept_trigger
from tests.conftest_stack import Example
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ensure_reconcile_schedule

TRIGGER = {
    "source": "test",
    "completion_percent": "100",
    "kpis": {},
    "evidence_ids": [],
    "external_ref": None,
    "note": None,
}


async def test_a_schedule_tick_starts_a_trigger_recorded_while_temporal_was_down(
    example: Example,
):
    stack = example.stack
    with stack.sessions() as session:
        run_id = accept_trigger(
            session,
            Caller("admin", "admin"),
            example.milestone("phase-1"),
            str(uuid.uuid4()),
            TRIGGER,
        ).run.run_id
    await ensure_reconcile_schedule(stack.temporal, stack.task_queue, 3600, grace_seconds=0)

    await stack.temporal.get_schedule_handle(RECONCILE_SCHEDULE_ID).trigger()

    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert status["amounts"]["gross_minor"] == 3_000_000
    await ensure_reconcile_schedule(stack.temporal, stack.task_queue, 0)
    with pytest.raises(RPCError):  # 0 turns the reconciler's Schedule off
        await stack.temporal.get_schedule_handle(RECONCILE_SCHEDULE_ID).describe()
