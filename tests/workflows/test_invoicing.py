"""The document workflows with their real activities: FinalizeInvoice, FinalizeDrafts (run by the
Temporal Schedule) and IssueCreditNote. Each history is replayed to prove determinism."""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from db.models import (
    AuditEvent,
    Customer,
    Engagement,
    Invoice,
    InvoiceLine,
    IssuedDocument,
    new_id,
)
from db.session import make_engine, make_session_factory
from tests.conftest import sqlite_database
from tests.workflows.conftest import HISTORIES, RECORD_TO, Harness, seed
from worker import WORKFLOWS, build_worker
from workflows.invoicing import (
    CreditLine,
    FinalizedInvoice,
    FinalizeDrafts,
    FinalizeInput,
    FinalizeInvoice,
    IssueCreditNote,
    IssueCreditNoteInput,
)
from workflows.schedules import ensure_finalize_schedule, finalize_schedule


async def replayed(handle: WorkflowHandle, record_as: str | None = None) -> Any:
    """The workflow's result, after checking its history replays deterministically; with
    ``TOLLGATE_RECORD_HISTORIES=1`` the history is also saved as ``histories/<record_as>.json``
    unless that exists (a committed history is never recorded again)."""
    result = await handle.result()
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    path = HISTORIES / f"{record_as}.json"
    if record_as is not None and RECORD_TO and not path.exists():
        path.write_text(history.to_json())
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

    first: FinalizedInvoice = await replayed(
        await start_finalize(harness, invoice_id), "finalize_invoice_records_its_pdf"
    )
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
        # Its PDF was recorded once, by the first run; the repeat found it recorded.
        issued = session.scalars(select(AuditEvent).where(AuditEvent.kind == "document_issued"))
        assert [e.data["sha256"] for e in issued] == [invoice.document_sha256]
        recorded = session.get_one(IssuedDocument, invoice.document_sha256)
        assert hashlib.sha256(recorded.content).hexdigest() == recorded.sha256
        assert recorded.number == first.number


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
        # Read in the engagements' zone, the run's boundary is today there: their drafts are due.
        updated = await ensure_finalize_schedule(
            client,
            live.task_queue,
            "0 6 1 * *",
            "TG",
            time_zone="America/New_York",
            schedule_id=schedule_id,
        )
        assert updated is not None
        schedule = (await handle.describe()).schedule
        assert "0 6 1 * *" in (schedule.state.note or "")
        assert schedule.spec.time_zone_name == "America/New_York"

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
        # Each invoice the schedule issued has its PDF recorded, and audited, once.
        recorded = session.scalars(select(IssuedDocument.number).order_by(IssuedDocument.number))
        assert list(recorded) == sorted(numbers)
        assert all(i.document_sha256 for i in finalized)


def test_a_schedule_time_zone_that_is_not_an_iana_name_is_refused_before_reaching_temporal():
    with pytest.raises(ValueError, match="TOLLGATE_FINALIZE_TIMEZONE must be an IANA time zone"):
        finalize_schedule("tollgate", "0 0 1 * *", "TG", "Mars/Olympus_Mons")


# ---- FinalizeDrafts at month ends ---------------------------------------------------------------


@pytest.fixture
async def ahead(time_skipping: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    with sqlite_database(tmp_path) as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        task_queue = f"tollgate-test-{uuid.uuid4()}"
        async with build_worker(time_skipping.client, sessions, task_queue):
            yield Harness(time_skipping, sessions, task_queue, *seed(sessions))
        engine.dispose()


def on_calendar(harness: Harness, timezone: str, country: str) -> None:
    """Switch to a fresh engagement whose business calendar is `country`'s in `timezone`."""
    harness.engage()
    with harness.sessions.begin() as session:
        engagement = session.get_one(Engagement, harness.engagement["id"])
        calendar = {"country": country, "subdivision": None, "timezone": timezone}
        engagement.approval = {**engagement.approval, "calendar": calendar}


async def skip_to_next(harness: Harness, month: int) -> datetime:
    """Move the clock to 00:00 UTC on the next 1st of `month`: when the default Schedule fires."""
    now = await harness.env.get_current_time()
    moment = datetime(now.year + (now.month >= month), month, 1, tzinfo=UTC)
    await harness.skip(moment - now)
    return moment


async def run_the_schedules_action(harness: Harness, **changes: Any) -> WorkflowHandle:
    """Start FinalizeDrafts now with the input the default Schedule gives it."""
    action = finalize_schedule(harness.task_queue, "0 0 1 * *", "TG").action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return await harness.env.client.start_workflow(
        FinalizeDrafts.run,
        replace(action.args[0], **changes),
        id=f"finalize-drafts-{uuid.uuid4()}",
        task_queue=harness.task_queue,
    )


async def test_the_1_december_run_dates_a_new_york_invoice_1_december_at_new_york_midnight(
    ahead: Harness,
):
    on_calendar(ahead, "Asia/Tokyo", "JP")
    tokyo_draft = await bill_phase_1(ahead)
    on_calendar(ahead, "America/New_York", "US")
    new_york_draft = await bill_phase_1(ahead)
    run_at = await skip_to_next(ahead, 12)

    handle = await run_the_schedules_action(ahead)
    numbers = await replayed(handle, "finalize_drafts_waits_for_each_calendars_midnight")

    new_york_midnight = datetime(run_at.year, 12, 1, tzinfo=ZoneInfo("America/New_York"))
    with ahead.sessions() as session:
        tokyo = session.get_one(Invoice, tokyo_draft)
        new_york = session.get_one(Invoice, new_york_draft)
    assert numbers == [tokyo.number, new_york.number]
    assert tokyo.issued_on == new_york.issued_on == date(run_at.year, 12, 1)
    # 09:00 on 1 December in Tokyo: at once; New York waits for its own midnight (05:00 UTC).
    assert run_at <= tokyo.finalized_at < run_at + timedelta(minutes=1)
    assert new_york_midnight <= new_york.finalized_at < new_york_midnight + timedelta(minutes=1)


async def test_the_1_january_run_numbers_a_new_york_invoice_in_the_new_year(ahead: Harness):
    draft = await bill_phase_1(ahead)
    run_at = await skip_to_next(ahead, 1)

    numbers = await replayed(await run_the_schedules_action(ahead))

    with ahead.sessions() as session:
        invoice = session.get_one(Invoice, draft)
    assert numbers == [invoice.number] == [f"TG-{run_at.year}-000001"]
    assert invoice.issued_on == date(run_at.year, 1, 1)


async def test_drafts_are_finalized_in_batches_continuing_as_new_with_gapless_numbers(
    ahead: Harness,
):
    drafts = []
    for _ in range(5):
        ahead.engage()
        drafts.append(await bill_phase_1(ahead))

    started = await run_the_schedules_action(ahead, batch_size=2, batches_per_run=2)
    last_numbers = await started.result()  # through this handle, the server skips time
    client = ahead.env.client
    first = client.get_workflow_handle(started.id, run_id=started.first_execution_run_id)
    assert await replayed(first, "finalize_drafts_in_batches_continues_as_new") == last_numbers

    first_history = await first.fetch_history()
    assert first_history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    last = client.get_workflow_handle(started.id)
    assert (await last.describe()).run_id != started.first_execution_run_id
    await replayed(last)
    with ahead.sessions() as session:
        invoices = [session.get_one(Invoice, draft) for draft in drafts]
    assert all(invoice.status == "finalized" for invoice in invoices)
    year = invoices[0].issued_on.year
    assert sorted(i.number for i in invoices) == [f"TG-{year}-00000{n}" for n in range(1, 6)]
    assert set(last_numbers) < {i.number for i in invoices}  # the last run issued the rest
