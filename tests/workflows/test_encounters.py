"""BillEncounters on the time-skipping server: chunks of lines posted once each, on the payer's
own draft, which opens a fresh draft rather than overflow an invoice."""

from typing import Any

from sqlalchemy import func, select

from activities.encounters import bill_chunk
from db.encounters import Encounter, EncounterStatus
from db.models import Invoice, InvoiceLine
from domain.bounds import MAX_AMOUNT_MINOR, MAX_INVOICE_MINOR
from tests.encounter_setup import encounter_engagement, priced_batch
from tests.workflows.conftest import Harness
from workflows.encounters import BillChunkRequest, BillEncounters, BillEncountersInput


async def bill(harness: Harness, engagement_id: str, batch_id: str, chunk_size: int) -> Any:
    return await harness.env.client.execute_workflow(
        BillEncounters.run,
        BillEncountersInput(engagement_id, batch_id, chunk_size),
        id=f"encounters:{engagement_id}:{batch_id}",
        task_queue=harness.task_queue,
    )


async def test_a_batch_is_billed_in_chunks_one_line_per_encounter(harness: Harness):
    engagement = encounter_engagement(harness.sessions, harness.people, 3_333)
    batch_id = priced_batch(harness.sessions, engagement["id"], 120)

    result = await bill(harness, engagement["id"], batch_id, chunk_size=50)

    assert (result.posted, result.posted_minor) == (120, 120 * 3_333)
    handle = harness.env.client.get_workflow_handle(f"encounters:{engagement['id']}:{batch_id}")
    await harness.replay(handle)
    with harness.sessions.begin() as session:
        lines = session.scalars(select(InvoiceLine).where(InvoiceLine.kind == "encounter")).all()
        invoice = session.get_one(Invoice, lines[0].invoice_id)
        payer_id = session.get_one(Encounter, lines[0].run_id).payer_id
        assert invoice.draft_key == f"{engagement['customer_id']}:USD:payer:{payer_id}"
        assert sum(1 for line in lines if line.invoice_id == invoice.id) == 120
        assert invoice.total_minor == 120 * 3_333
        # Billing the batch again (one chunk of 500) posts nothing and answers the same.
        again = bill_chunk(session, BillChunkRequest(batch_id, 0, 500, "2026-11-22T00:00:00+00:00"))
        assert (again.posted, again.remaining) == (120, 0)
        assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 120


async def test_a_payer_draft_that_would_overflow_opens_a_fresh_one(harness: Harness):
    engagement = encounter_engagement(harness.sessions, harness.people, MAX_AMOUNT_MINOR)
    per_invoice = MAX_INVOICE_MINOR // MAX_AMOUNT_MINOR
    batch_id = priced_batch(harness.sessions, engagement["id"], per_invoice + 1)

    result = await bill(harness, engagement["id"], batch_id, chunk_size=500)

    assert result.posted == per_invoice + 1
    with harness.sessions.begin() as session:
        invoice_ids = set(
            session.scalars(select(Encounter.invoice_id).where(Encounter.batch_id == batch_id))
        )
        invoices = [session.get_one(Invoice, i) for i in invoice_ids]
        assert sorted(i.total_minor for i in invoices) == [MAX_AMOUNT_MINOR, MAX_INVOICE_MINOR]
        statuses = set(
            session.scalars(select(Encounter.status).where(Encounter.batch_id == batch_id))
        )
        assert statuses == {EncounterStatus.BILLED}
