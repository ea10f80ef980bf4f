"""Beyond the main path: each of the client's operations reads the real API's answer into its
model (a key the model does not declare fails), and downloads come back as their bytes."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from api.example import SIGNOFF_PDF
from tests.conftest_stack import Example
from tollgate_client import AsyncTollgate


async def billed_run(example: Example, tollgate: AsyncTollgate) -> str:
    phase1 = example.milestone("phase-1")
    run_id = (await tollgate.trigger(phase1, idempotency_key=str(uuid.uuid4()))).run_id
    for _ in range(300):
        if (await tollgate.get_run(run_id)).stage == "awaiting_approval":
            break
        await asyncio.sleep(0.1)
    await tollgate.with_token(example.token("lead")).decide(run_id, "delivery_lead", "approve")
    await tollgate.with_token(example.token("client")).decide(run_id, "client_ap", "approve")
    for _ in range(300):
        if (await tollgate.get_run(run_id)).stage == "billed":
            return run_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} was never billed")


async def test_an_invoice_its_credit_note_and_their_documents_are_read_through_the_client(
    example: Example, tollgate: AsyncTollgate
):
    run_id = await billed_run(example, tollgate)
    invoice_id = (await tollgate.get_run(run_id)).invoice_id
    assert invoice_id is not None

    final = await tollgate.finalize_invoice(invoice_id)
    line = next(line for line in final.lines if line.kind == "milestone")
    key = str(uuid.uuid4())
    note = await tollgate.create_credit_note(
        invoice_id,
        reason="Cutover plan delivered late",
        lines=[{"invoice_line_id": line.id, "amount_minor": 50_000}],
        idempotency_key=key,
    )
    replayed = await tollgate.create_credit_note(
        invoice_id,
        reason="Cutover plan delivered late",
        lines=[{"invoice_line_id": line.id, "amount_minor": 50_000}],
        idempotency_key=key,
    )

    assert final.status == "finalized" and final.number is not None
    assert (replayed.id, note.total_minor) == (note.id, -50_000)
    assert (await tollgate.get_credit_note(note.id)).lines[0].invoice_line_id == line.id
    listed = await tollgate.list_credit_notes(example.customer["id"])
    assert note.id in [n.id for n in listed.items]
    for document in (
        await tollgate.invoice_pdf(invoice_id),
        await tollgate.credit_note_pdf(note.id),
        await tollgate.certificate_pdf(run_id),
    ):
        assert document.startswith(b"%PDF-")


async def test_evidence_and_notifications_are_read_through_the_client(
    example: Example, tollgate: AsyncTollgate
):
    evidence = await tollgate.upload_evidence(SIGNOFF_PDF, "signoff.pdf", description="UAT")
    run_id = await billed_run(example, tollgate)
    notices = [n async for n in tollgate.items(tollgate.list_notifications, run_id=run_id)]

    assert await tollgate.download_evidence(evidence.id) == SIGNOFF_PDF
    assert (evidence.filename, evidence.description, evidence.size) == (
        "signoff.pdf",
        "UAT",
        len(SIGNOFF_PDF),
    )
    assert "approval_requested" in {n.kind for n in notices}
    detail = await tollgate.get_notification(notices[0].id)
    assert (detail.id, detail.run_id) == (notices[0].id, run_id)


async def test_sources_trigger_urls_and_endpoints_are_managed_through_the_client(
    example: Example, tollgate: AsyncTollgate
):
    engagement_id = example.engagement["id"]
    source = await tollgate.create_source(
        engagement_id,
        {
            "kind": "alertmanager",
            "name": "Uptime SLO",
            "alertname": "PlatformUptimeSLOMet",
            "milestone": "phase-1",
            "kpis": {"uptime_pct": "uptime"},
        },
    )
    rotated = await tollgate.rotate_source_secret(source.id, overlap_hours=0)
    deactivated = await tollgate.deactivate_source(source.id)
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    url = await tollgate.create_trigger_url(engagement_id, "phase-1", expires, max_uses=1)
    await tollgate.revoke_trigger_url(url.id)
    endpoint = await tollgate.create_webhook_endpoint(
        "https://hooks.example.com/tollgate", ["run_billed"], engagement_id=engagement_id
    )

    assert rotated.secret != source.secret
    assert (deactivated.active, (await tollgate.get_source(source.id)).active) == (False, False)
    assert [s.id for s in (await tollgate.list_sources(engagement_id)).items] == [source.id]
    assert (await tollgate.list_deliveries(source.id)).items == []
    urls = (await tollgate.list_trigger_urls(engagement_id)).items
    assert [(u.id, u.status) for u in urls] == [(url.id, "revoked")]
    assert (endpoint.events, endpoint.engagement_id) == (["run_billed"], engagement_id)


async def test_customers_engagements_and_tokens_are_read_through_the_client(
    example: Example, tollgate: AsyncTollgate
):
    engagement_id = example.engagement["id"]
    token = await tollgate.create_integration_token(engagement_id)
    as_of_1 = await tollgate.get_engagement_version(engagement_id, 1)
    customers = [c.id async for c in tollgate.items(tollgate.list_customers)]
    engagements = await tollgate.list_engagements(customer_id=example.customer["id"])

    assert token.engagement_id == engagement_id
    assert as_of_1.id == engagement_id  # type: ignore[attr-defined]
    assert (await tollgate.get_customer(example.customer["id"])).currency == "USD"
    assert example.customer["id"] in customers
    assert [e.id for e in engagements.items] == [engagement_id]
    assert (await tollgate.health()).status == "ok"
    assert (await tollgate.with_token(example.token("lead")).my_approvals()).items == []
