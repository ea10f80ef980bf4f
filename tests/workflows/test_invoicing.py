"""The document workflows with their real activities: FinalizeInvoice, FinalizeDrafts (run by the
Temporal Schedule) and IssueCreditNote. Each history is replayed to prove determinism."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleHandle,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from db.models import AuditEvent, Customer, Invoice, InvoiceLine, new_id
from db.session import make_engine, make_session_factory
from tests.conftest import sqlite_database
from tests.workflows.conftest import Harness, seed
from worker import WORKFLOWS, build_worker
from workflows.invoicing import (
    CreditLine,
    FinalizedInvoice,
    FinalizeInput,
    FinalizeInvoice,
    IssueCreditNote,
    IssueCreditNoteInput,
)
from workflows.schedules import ensure_finalize_schedule


async def replayed(handle: WorkflowHandle) -> Any:
    """The workflow's result, after checking its history replays deterministically."""
    result = await handle.result()
    await Replayer(workflows=WORKFLOWS).replay_workflow(await handle.fetch_history())
    return result


async def bill_phase_1(harness: Harness) -> str:
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")
    status = await harness.finish(run)
    assert status.invoice_id is not None
    return status.invoice_id


async def start_finalize(harness: Harness, invoice_id: str) -> WorkflowHandle:
    return await harness.env.client.start_workflow(
        FinalizeInvoice.run,
        FinalizeInput(invoice_id, "TG", "admin"),
        id=f"finalize-{invoice_id}-{uuid.uuid4()}",
        task_queue=harness.task_queue,
    )


def empty_draft(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        customer = Customer(id=new_id("cus"), name="Initech", currency="USD")
        session.add(customer)
        session.flush()
        draft = Invoice(
            id=new_id("inv"),
            customer_id=customer.id,
            currency="USD",
            draft_key=f"{customer.id}:USD",
        )
        session.add(draft)
        return draft.id


def business_error(failure: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    activity_error = failure.value.cause
    assert isinstance(activity_error, ActivityError)
    error = activity_error.cause
    assert isinstance(error, ApplicationError)
    return error


async def test_finalizing_numbers_the_invoice_once_and_a_repeat_returns_it_unchanged(
    harness: Harness,
):
    invoice_id = await bill_phase_1(harness)

    first: FinalizedInvoice = await replayed(await start_finalize(harness, invoice_id))
    again: FinalizedInvoice = await replayed(await start_finalize(harness, invoice_id))

    assert first.number.startswith("TG-") and first.newly
    assert (again.number, again.due_on, again.newly) == (first.number, first.due_on, False)
    assert first.total_minor == 2_700_000
    with harness.sessions() as session:
        invoice = session.get_one(Invoice, invoice_id)
        assert (invoice.status, invoice.draft_key, invoice.number) == (
            "finalized",
            None,
            first.number,
        )
        kinds = session.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("invoice_f%")))
        assert list(kinds) == ["invoice_finalized"]


async def test_finalizing_an_empty_draft_fails_at_once_with_invoice_empty(harness: Harness):
    draft = empty_draft(harness.sessions)
    handle = await start_finalize(harness, draft)

    with pytest.raises(WorkflowFailureError) as failure:
        await replayed(handle)

    error = business_error(failure)
    assert (error.type, error.non_retryable) == ("InvoiceEmpty", True)
    with harness.sessions() as session:
        assert session.get_one(Invoice, draft).status == "draft"


async def test_a_credit_note_is_issued_once_per_dedupe_key_and_refused_on_a_draft(
    harness: Harness,
):
    invoice_id = await bill_phase_1(harness)
    with harness.sessions() as session:
        line_id = session.scalars(
            select(InvoiceLine.id).where(
                InvoiceLine.invoice_id == invoice_id, InvoiceLine.kind == "milestone"
            )
        ).one()
    request = IssueCreditNoteInput(
        invoice_id=invoice_id,
        lines=[CreditLine(line_id, 100_000, "Late delivery")],
        reason="Late delivery",
        source="manual",
        actor="admin",
        dedupe_key="test:credit-1",
        issuer_prefix="TG",
    )

    async def issue() -> WorkflowHandle:
        return await harness.env.client.start_workflow(
            IssueCreditNote.run, request, id=f"credit-{uuid.uuid4()}", task_queue=harness.task_queue
        )

    with pytest.raises(WorkflowFailureError) as failure:
        await replayed(await issue())
    error = business_error(failure)
    assert (error.type, error.details[0]["status"]) == ("CreditRefused", 409)
    assert "draft" in error.message

    await replayed(await start_finalize(harness, invoice_id))
    first = await replayed(await issue())
    second = await replayed(await issue())
    assert first == second
    assert first.total_minor == -100_000 and first.number.startswith("TG-CN-")


# ---- the Schedule, on the Temporal dev server ---------------------------------------------------


@dataclass
class Live:
    """Two customers' engagements on one database, with a worker on the dev server."""

    env: WorkflowEnvironment
    sessions: sessionmaker[Session]
    task_queue: str
    harnesses: list[Harness]


@pytest.fixture
async def live(dev_server: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Live]:
    with sqlite_database(tmp_path) as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        task_queue = f"tollgate-test-{uuid.uuid4()}"
        harnesses = [
            Harness(dev_server, sessions, task_queue, *seed(sessions)),
            Harness(dev_server, sessions, task_queue, *seed(sessions)),
        ]
        async with build_worker(dev_server.client, sessions, task_queue):
            yield Live(dev_server, sessions, task_queue, harnesses)
        engine.dispose()


async def started_by(client: Client, handle: ScheduleHandle) -> WorkflowHandle:
    """The workflow the Schedule's first action started."""
    for _ in range(300):
        actions = (await handle.describe()).info.recent_actions
        if actions:
            action = actions[0].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return client.get_workflow_handle(action.workflow_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the Schedule never started its workflow")


async def test_the_schedule_finalizes_every_draft_with_lines_and_leaves_empty_ones_open(
    live: Live,
):
    drafts = [await bill_phase_1(harness) for harness in live.harnesses]
    empty = empty_draft(live.sessions)
    schedule_id = f"finalize-drafts-test-{uuid.uuid4()}"
    client = live.env.client
    handle = await ensure_finalize_schedule(
        client, live.task_queue, "0 0 1 * *", "TG", schedule_id=schedule_id
    )
    assert handle is not None
    try:
        updated = await ensure_finalize_schedule(
            client, live.task_queue, "0 6 1 * *", "TG", schedule_id=schedule_id
        )
        assert updated is not None
        assert "0 6 1 * *" in ((await handle.describe()).schedule.state.note or "")

        await handle.trigger()
        numbers = await replayed(await started_by(client, handle))
    finally:
        assert (
            await ensure_finalize_schedule(
                client, live.task_queue, "", "TG", schedule_id=schedule_id
            )
            is None
        )

    assert len(numbers) == 2
    with live.sessions() as session:
        finalized = [session.get_one(Invoice, invoice_id) for invoice_id in drafts]
        assert sorted(numbers) == sorted(i.number for i in finalized)
        assert all(i.status == "finalized" and i.due_on for i in finalized)
        assert session.get_one(Invoice, empty).status == "draft"
