"""The reconciler: nothing accepted is silently dropped, and no claim outlives its workflow.

It compares the books with Temporal and acts on the differences, each action audited:
- a run recorded but never started (Temporal was down when its trigger was accepted, and the
  client never retried) is started with its recorded input;
- an encounter batch whose ``BillEncounters`` workflow never started (the upload answered
  ``"billing": "pending"``) and that still holds unbilled encounters is started;
- a run whose workflow is closed (terminated, timed out, failed) or gone, while the books still
  show it open, is ended (``cancelled`` or ``failed``) and releases what it held;
- a claim without an open run — a milestone's ``open_run_id``, an engagement left ``closing``,
  a change order left ``proposed`` — is released.
Runs and batches younger than ``grace`` are left alone: their start may still be on its way.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from db.audit import append_event
from db.encounters import EncounterBatch
from db.models import ChangeOrder, Engagement, Milestone, Run
from domain.lifecycle import TERMINAL_STAGES, RunStage, status_after_unbilled_end
from services.encounter_batches import start_billing, unbilled_batches
from services.run_ends import end_run

ACTOR = "reconciler"
# Temporal's view of a closed workflow → how the books end the run.
CLOSED_AS = {
    WorkflowExecutionStatus.CANCELED: RunStage.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: RunStage.CANCELLED,
    WorkflowExecutionStatus.FAILED: RunStage.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RunStage.FAILED,
    WorkflowExecutionStatus.COMPLETED: RunStage.FAILED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: RunStage.FAILED,
}
# Starts a recorded run's workflow from its row (kind-specific input and search attributes).
Starter = Callable[[Client, str, Run], Awaitable[object]]


@dataclass
class Report:
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    unstartable: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    batches_started: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the pass did, each count followed by the ids it is about."""
        groups = (
            ("started {} run(s) recorded but never started", self.started),
            ("ended {} run(s) whose workflow was closed or gone", self.ended),
            ("ended {} run(s) that Temporal refused to start", self.unstartable),
            ("released {} claim(s) held by no open run", self.released),
            ("started billing {} encounter batch(es) never started", self.batches_started),
        )
        return [
            line
            for text, ids in groups
            for line in (text.format(len(ids)), *(f"  {i}" for i in ids))
        ]


async def reconcile(
    sessions: sessionmaker[Session],
    client: Client,
    task_queue: str,
    starters: dict[str, Starter],
    *,
    grace: timedelta = timedelta(minutes=2),
    limit: int = 500,
) -> Report:
    report = Report()
    now = datetime.now(UTC)
    for run in await asyncio.to_thread(_open_runs, sessions, now - grace, limit):
        try:
            description = await client.get_workflow_handle(run.id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await _start(sessions, client, task_queue, starters, run, report)
            continue
        stage = CLOSED_AS.get(description.status) if description.status else None
        if stage is None:
            continue  # running: the workflow owns it
        detail = f"workflow {description.status.name.lower()} without recording its end"
        if await asyncio.to_thread(_end, sessions, run.id, stage, detail):
            report.ended.append(run.id)
    report.released = await asyncio.to_thread(_release_stale_claims, sessions)
    report.batches_started = await _start_unbilled_batches(
        sessions, client, task_queue, now - grace, limit
    )
    return report


async def _start_unbilled_batches(
    sessions: sessionmaker[Session],
    client: Client,
    task_queue: str,
    before: datetime,
    limit: int,
) -> list[str]:
    """Batches with unbilled encounters and no workflow at all: their start never happened."""
    started: list[str] = []
    for batch in await asyncio.to_thread(_unbilled_batches, sessions, before, limit):
        try:
            await client.get_workflow_handle(batch.workflow_id).describe()
            continue  # running, or closed: its own end (or ``POST …/bill``) owns it
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        await start_billing(client, task_queue, batch)
        await asyncio.to_thread(_audit_batch_start, sessions, batch)
        started.append(batch.id)
    return started


def _release_stale_claims(sessions: sessionmaker[Session]) -> list[str]:
    """Claims left behind by runs that ended before every end released them (older versions)."""
    released: list[str] = []
    with sessions.begin() as session:
        open_runs = select(Run.id).where(Run.stage.not_in(TERMINAL_STAGES))
        for milestone in session.scalars(
            select(Milestone)
            .where(Milestone.open_run_id.is_not(None), Milestone.open_run_id.not_in(open_runs))
            .with_for_update()
        ):
            run_id = milestone.open_run_id
            milestone.open_run_id = None
            milestone.status = status_after_unbilled_end(
                Decimal(milestone.accepted_percent), RunStage.CANCELLED
            )
            _audit_release(session, milestone.engagement_id, milestone.id, run_id, "milestone")
            released.append(milestone.id)
        closing = select(Run.engagement_id).where(
            Run.kind == "closeout", Run.stage.not_in(TERMINAL_STAGES)
        )
        for engagement in session.scalars(
            select(Engagement).where(Engagement.status == "closing", Engagement.id.not_in(closing))
        ):
            engagement.status = "active"
            _audit_release(session, engagement.id, None, None, "engagement")
            released.append(engagement.id)
        for order in session.scalars(
            select(ChangeOrder).where(
                ChangeOrder.status == "proposed", ChangeOrder.run_id.not_in(open_runs)
            )
        ):
            order.status = RunStage.CANCELLED
            order.detail = "its sign-off ended without closing it (released by the reconciler)"
            _audit_release(session, order.engagement_id, None, order.run_id, "change_order")
            released.append(order.id)
    return released


def _audit_release(
    session: Session, engagement_id: str, milestone_id: str | None, run_id: str | None, what: str
) -> None:
    append_event(
        session,
        engagement_id=engagement_id,
        milestone_id=milestone_id,
        run_id=run_id,
        actor=ACTOR,
        kind="claim_released",
        data={"claim": what, "run_id": run_id},
    )


def _unbilled_batches(
    sessions: sessionmaker[Session], before: datetime, limit: int
) -> list[EncounterBatch]:
    with sessions() as session:
        return unbilled_batches(session, before, limit)


def _open_runs(sessions: sessionmaker[Session], before: datetime, limit: int) -> list[Run]:
    with sessions() as session:
        query = (
            select(Run)
            .where(Run.stage.not_in(TERMINAL_STAGES), Run.created_at < before)
            .order_by(Run.created_at)
            .limit(limit)
        )
        return list(session.scalars(query))


async def _start(
    sessions: sessionmaker[Session],
    client: Client,
    task_queue: str,
    starters: dict[str, Starter],
    run: Run,
    report: Report,
) -> None:
    try:
        await starters[run.kind](client, task_queue, run)
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            raise  # Temporal is unwell: the next pass tries again
        detail = f"Temporal refused to start the run: {exc.message}"[:1000]
        if await asyncio.to_thread(_end, sessions, run.id, RunStage.FAILED, detail):
            report.unstartable.append(run.id)
        return
    await asyncio.to_thread(_audit_start, sessions, run)
    report.started.append(run.id)


def _end(sessions: sessionmaker[Session], run_id: str, stage: RunStage, detail: str) -> bool:
    with sessions.begin() as session:
        return end_run(session, run_id, stage, detail, datetime.now(UTC), ACTOR)


def _audit_start(sessions: sessionmaker[Session], run: Run) -> None:
    with sessions.begin() as session:
        append_event(
            session,
            engagement_id=run.engagement_id,
            milestone_id=run.milestone_id,
            run_id=run.id,
            actor=ACTOR,
            kind="run_started_late",
            data={"recorded_at": run.created_at.isoformat(), "kind": run.kind},
            dedupe_key=f"{run.id}:started_late",
        )


def _audit_batch_start(sessions: sessionmaker[Session], batch: EncounterBatch) -> None:
    with sessions.begin() as session:
        append_event(
            session,
            engagement_id=batch.engagement_id,
            actor=ACTOR,
            kind="encounter_billing_started_late",
            data={"batch_id": batch.id, "recorded_at": batch.created_at.isoformat()},
            dedupe_key=f"{batch.id}:started_late",
        )
