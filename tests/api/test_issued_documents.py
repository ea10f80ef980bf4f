"""Documents as issued, over real HTTP on both databases: finalizing an invoice and issuing a
credit note record the PDF's sha256 in the audit chain before they answer, the PDF served
afterwards is exactly the file with that hash, and a copy altered by one byte is not a document
Tollgate issued."""

import hashlib
from typing import Any

from sqlalchemy import update

from db.models import IssuedDocument
from tests.api.problems import assert_problem
from tests.api.test_documents import audit, billed_phase_1, pdf, text_of
from tests.conftest_stack import Example


async def finalized_invoice(example: Example) -> dict[str, Any]:
    _, invoice_id, _ = await billed_phase_1(example)
    response = await example.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert response.status_code == 200, response.text
    return response.json()


async def served(example: Example, path: str) -> tuple[bytes, str]:
    """The PDF at ``path`` and the sha256 its X-Document-SHA256 header names."""
    response = await example.stack.http.get(path, headers=example.stack.auth())
    assert response.status_code == 200, response.text
    return response.content, response.headers["x-document-sha256"]


def issued_events(events: list[dict[str, Any]], document_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["kind"] == "document_issued" and e["data"]["document_id"] == document_id
    ]


def tampered(content: bytes) -> bytes:
    """The same PDF with one byte changed."""
    at = len(content) // 2
    return content[:at] + bytes([content[at] ^ 1]) + content[at + 1 :]


async def test_a_finalized_invoice_audits_its_pdfs_sha256_and_serves_exactly_that_file(
    example: Example,
):
    invoice = await finalized_invoice(example)
    sha256 = invoice["document_sha256"]
    assert sha256 is not None and len(sha256) == 64

    [event] = issued_events(await audit(example), invoice["id"])
    content, header = await served(example, f"/v1/invoices/{invoice['id']}.pdf")
    assert hashlib.sha256(content).hexdigest() == sha256 == header == event["data"]["sha256"]
    assert event["data"] | {"sha256": "…"} == {
        "document": "invoice",
        "document_id": invoice["id"],
        "number": invoice["number"],
        "filename": f"invoice-{invoice['number']}.pdf",
        "sha256": "…",
        "size": len(content),
    }
    assert invoice["number"] in text_of(content)
    # Asked for through Accept, and once the chain has grown, it is the same file.
    await example.trigger("phase-2", {"source": "test", "kpis": {"error_rate_pct": "0.2"}})
    again = await pdf(example, f"/v1/invoices/{invoice['id']}", Accept="application/pdf")
    assert again == content
    verify = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    assert verify.json()["ok"] is True

    # Finalizing again issues nothing new: the same hash, one event.
    repeat = await example.stack.post(f"/v1/invoices/{invoice['id']}/finalize", None)
    assert repeat.json() == invoice
    assert len(issued_events(await audit(example), invoice["id"])) == 1

    found = await example.stack.get(f"/v1/documents/{sha256}")
    assert found.status_code == 200, found.text
    assert found.json() | {"issued_at": "…"} == {
        "sha256": sha256,
        "size": len(content),
        "kind": "invoice",
        "document_id": invoice["id"],
        "number": invoice["number"],
        "filename": f"invoice-{invoice['number']}.pdf",
        "issued_at": "…",
    }
    forged = hashlib.sha256(tampered(content)).hexdigest()
    body = assert_problem(await example.stack.get(f"/v1/documents/{forged}"), 404)
    assert body["type"].endswith(":document-not-issued") and forged in body["detail"]


async def test_the_served_invoice_is_the_file_issued_even_if_rendering_it_now_would_differ(
    example: Example,
):
    invoice = await finalized_invoice(example)
    content, _ = await served(example, f"/v1/invoices/{invoice['id']}.pdf")
    # The stored file is what is served: a stand-in shows it is not rendered again.
    with example.stack.sessions.begin() as session:
        session.execute(
            update(IssuedDocument)
            .where(IssuedDocument.document_id == invoice["id"])
            .values(content=content + b"\n% kept")
        )
    kept, header = await served(example, f"/v1/invoices/{invoice['id']}.pdf")
    assert kept == content + b"\n% kept"
    assert header == hashlib.sha256(kept).hexdigest() != invoice["document_sha256"]


async def test_an_issued_credit_note_audits_its_pdfs_sha256_and_a_tampered_copy_is_not_it(
    example: Example,
):
    invoice = await finalized_invoice(example)
    line = next(line for line in invoice["lines"] if line["kind"] == "milestone")
    response = await example.stack.post(
        f"/v1/invoices/{invoice['id']}/credit-notes",
        {"reason": "Goodwill", "lines": [{"invoice_line_id": line["id"], "amount_minor": 50_000}]},
        headers={"Idempotency-Key": "goodwill-hash"},
    )
    assert response.status_code == 201, response.text
    note = response.json()
    sha256 = note["document_sha256"]

    [event] = issued_events(await audit(example), note["id"])
    content, header = await served(example, f"/v1/credit-notes/{note['id']}.pdf")
    assert hashlib.sha256(content).hexdigest() == sha256 == header == event["data"]["sha256"]
    assert (event["data"]["document"], event["data"]["number"]) == ("credit_note", note["number"])
    assert f"Credit note {note['number']}" in text_of(content)
    # The invoice's own issued PDF is untouched by the credit note.
    invoice_now = (await example.stack.get(f"/v1/invoices/{invoice['id']}")).json()
    assert invoice_now["document_sha256"] == invoice["document_sha256"]

    found = (await example.stack.get(f"/v1/documents/{sha256}")).json()
    assert (found["kind"], found["document_id"]) == ("credit_note", note["id"])
    forged = hashlib.sha256(tampered(content)).hexdigest()
    assert_problem(await example.stack.get(f"/v1/documents/{forged}"), 404)


async def test_a_draft_has_no_issued_pdf_and_a_lookup_needs_a_real_hash_and_the_admin(
    example: Example,
):
    _, invoice_id, _ = await billed_phase_1(example)
    draft = (await example.stack.get(f"/v1/invoices/{invoice_id}")).json()
    assert draft["document_sha256"] is None
    response = await example.stack.http.get(
        f"/v1/invoices/{invoice_id}.pdf", headers=example.stack.auth()
    )
    assert "DRAFT" in text_of(response.content)
    assert "x-document-sha256" not in response.headers

    assert_problem(await example.stack.get("/v1/documents/not-a-hash"), 422, "sha256")
    assert_problem(await example.stack.get(f"/v1/documents/{'0' * 64}"), 404)
    lead = example.token("lead")
    assert_problem(await example.stack.get(f"/v1/documents/{'0' * 64}", token=lead), 403)
