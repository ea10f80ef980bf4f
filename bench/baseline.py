"""The bare-Temporal baseline: a run of the same shape as a manual Tollgate run (2 no-op
activities, two approvals by Update, 4 no-op activities, a status query), no HTTP, no database."""

import asyncio
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client

with workflow.unsafe.imports_passed_through():
    from bench.measure import RunTimes

ROLES = ("delivery_lead", "client_ap")


@activity.defn(name="bench_noop")
async def noop(step: str) -> str:
    return step


@workflow.defn(name="BenchBareRun")
class BareRun:
    def __init__(self) -> None:
        self.stage = "received"
        self.pending = set(ROLES)

    @workflow.run
    async def run(self) -> str:
        for step in ("record_trigger", "evaluate_criteria"):
            await self._step(step)
        self.stage = "awaiting_approval"
        await workflow.wait_condition(lambda: not self.pending)
        self.stage = "approved"
        for step in ("open_draft", "post_milestone", "post_retention", "notify"):
            await self._step(step)
        self.stage = "billed"
        return self.stage

    async def _step(self, step: str) -> None:
        await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))

    @workflow.update
    async def decide(self, role: str) -> list[str]:
        self.pending.discard(role)
        return sorted(self.pending)

    @workflow.query
    def status(self) -> str:
        return self.stage


async def bare_run(client: Client, task_queue: str, run_id: str, poll: float) -> RunTimes:
    """One bare run, timed like a full one: start, approvals once awaiting, until billed."""
    times = RunTimes()
    start = time.monotonic()
    handle = await client.start_workflow(BareRun.run, id=run_id, task_queue=task_queue)
    times.trigger = time.monotonic() - start
    while await handle.query(BareRun.status) != "awaiting_approval":
        await asyncio.sleep(poll)
    times.to_awaiting = time.monotonic() - start
    for role in ROLES:
        sent = time.monotonic()
        await handle.execute_update(BareRun.decide, role)
        times.decisions.append(time.monotonic() - sent)
    approved = time.monotonic()
    while await handle.query(BareRun.status) != "billed":
        await asyncio.sleep(poll)
    times.to_billed = time.monotonic() - approved
    return times
