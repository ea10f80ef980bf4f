"""The documents people read, over real HTTP on both databases: a billed phase 1 gives an invoice
PDF, a credit note PDF and a sign-off certificate PDF whose extracted text carries the figures,
lines, evidence hashes and audit hashes; page 1 of each is rendered to PNG with pdftoppm into
test-artifacts/documents/ for a person to look at."""

import hashlib
import io
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from api.example import SIGNOFF_PDF, platform_migration
from api.routes.documents import wants_pdf
from tests.api.problems import assert_problem
from tests.conftest import unavailable
from tests.conftest_stack import Example

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "documents"
NEW_YORK = ZoneInfo("America/New_York")
CUSTOMER = "Ωμέγα Σύμβουλοι"
CONTACT = "Клиент Петров"


async def greek_customer(example: Example) -> Example:
    """The example engagement for a customer with a Greek name, with a Cyrillic approver."""
    stack = example.stack
    customer = await stack.post("/v1/customers", {"name": CUSTOMER, "currency": "USD"})
    assert customer.status_code == 201, customer.text
    client = await stack.post("/v1/principals", {"name": CONTACT, "email": "petrov@example.com"})
    assert client.status_code == 201, client.text
    people = {**example.people, "client": client.json()}
    ids = [people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    body = platform_migration(customer.json()["id"], *ids)
    engagement = await stack.post("/v1/engagements", body)
    assert engagement.status_code == 201, engagement.text
    return Example(stack, people, customer.json(), engagement.json())


async def billed_phase_1(example: Example) -> tuple[str, str, dict[str, Any]]:
    """Phase 1 triggered with evidence, approved by both roles with comments: (run, invoice,
    the uploaded evidence)."""
    evidence = await example.upload(SIGNOFF_PDF, "phase-1-signoff.pdf")
    body = {"source": "test", "kpis": {"p95_latency_ms": "212"}, "evidence_ids": [evidence["id"]]}
    response = await example.trigger("phase-1", body)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    lead = await example.decide(run_id, "delivery_lead", "lead", comment="Plan delivered")
    assert lead.status_code == 202, lead.text
    client = await example.decide(run_id, "client_ap", "client", comment="Согласовано")
    assert client.status_code == 202, client.text
    billed = await example.wait_for_stage(run_id, "billed")
    return run_id, billed["invoice_id"], evidence


async def pdf(example: Example, path: str, token: str | None = None, **headers: str) -> bytes:
    response = await example.stack.http.get(path, headers={**example.stack.auth(token), **headers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    content = response.content
    assert content.startswith(b"%PDF-")
    assert response.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    return content


def text_of(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def compact(text: str) -> str:
    """The text without whitespace: a hash wrapped across lines reads as one again."""
    return re.sub(r"\s+", "", text)


def page_one_png(content: bytes, name: str) -> Path:
    """Page 1 as a PNG in test-artifacts/documents/, rendered by poppler's pdftoppm."""
    if shutil.which("pdftoppm") is None:
        unavailable("pdftoppm (poppler-utils)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(content)
    stem = ARTIFACTS / f"{name}-page1"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile", source, stem],
        check=True,
        timeout=60,
    )
    image = stem.with_suffix(".png")
    assert image.stat().st_size > 20_000  # a rendered page, not an empty one
    return image


async def audit(example: Example) -> list[dict[str, Any]]:
    response = await example.stack.get(
        f"/v1/engagements/{example.engagement['id']}/audit?limit=200"
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def local(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")


async def test_an_invoice_pdf_carries_its_lines_totals_evidence_and_audit_anchor(
    example: Example,
):
    greek = await greek_customer(example)
    _, invoice_id, evidence = await billed_phase_1(greek)

    draft = text_of(await pdf(greek, f"/v1/invoices/{invoice_id}.pdf"))
    assert "DRAFT" in draft and f"Draft {invoice_id}" in draft

    finalized = await greek.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert finalized.status_code == 200, finalized.text
    invoice = finalized.json()
    content = await pdf(greek, f"/v1/invoices/{invoice_id}.pdf")
    page_one_png(content, "invoice")
    text = text_of(content)

    assert CUSTOMER in text  # Greek, extracted as written: the font covers it
    assert "Tollgate" in text  # the issuer (TOLLGATE_ISSUER_NAME's default)
    assert invoice["number"] in text and "DRAFT" not in text
    issued = datetime.fromisoformat(invoice["issued_on"]).strftime("%d %B %Y")
    due = datetime.fromisoformat(invoice["due_on"]).strftime("%d %B %Y")
    assert f"Issued {issued}" in text and f"Due {due}" in text
    engagement = greek.engagement
    assert f"Platform migration ({engagement['id']})" in text  # the lines' group
    assert "Assessment and cutover plan (phase-1, 100% complete)" in text
    assert "30,000.00 USD" in text  # the milestone line
    assert "Retention withheld (10%) on phase-1" in text and "-3,000.00 USD" in text
    assert "Total due 27,000.00 USD" in text
    assert [line["amount_minor"] for line in invoice["lines"]] == [3_000_000, -300_000]
    assert "phase-1-signoff.pdf" in text
    assert evidence["sha256"] == hashlib.sha256(SIGNOFF_PDF).hexdigest()
    assert compact(f"sha256 {evidence['sha256']}") in compact(text)
    # Anchored to the event that finalized it, which verifies as part of the whole chain.
    issued_by = next(e for e in await audit(greek) if e["kind"] == "invoice_finalized")
    assert compact(issued_by["hash"]) in compact(text)
    assert f"#{issued_by['seq']}invoice_finalized" in compact(text)
    assert f"/v1/engagements/{engagement['id']}/audit/verify" in compact(text)
    verify = await greek.stack.get(f"/v1/engagements/{engagement['id']}/audit/verify")
    assert verify.json()["ok"] is True

    # Deterministic: the same invoice again, and through Accept, is the same bytes, even after
    # the engagement's chain has grown.
    await greek.trigger("phase-2", {"source": "test", "kpis": {"error_rate_pct": "0.2"}})
    assert await pdf(greek, f"/v1/invoices/{invoice_id}.pdf") == content
    negotiated = await pdf(greek, f"/v1/invoices/{invoice_id}", Accept="application/pdf")
    assert negotiated == content
    as_json = await greek.stack.http.get(
        f"/v1/invoices/{invoice_id}", headers={**greek.stack.auth(), "Accept": "*/*"}
    )
    assert as_json.json()["number"] == invoice["number"]

    # Whoever may not read the invoice as JSON may not read its PDF either.
    for path in (f"/v1/invoices/{invoice_id}.pdf", f"/v1/invoices/{invoice_id}"):
        refused = await greek.stack.http.get(
            path, headers={**greek.stack.auth(greek.token("lead")), "Accept": "application/pdf"}
        )
        assert_problem(refused, 403)
    assert_problem(await greek.stack.get("/v1/invoices/inv_missing.pdf"), 404)


async def test_a_credit_note_pdf_names_the_invoice_it_credits_the_reason_and_the_amount(
    example: Example,
):
    greek = await greek_customer(example)
    _, invoice_id, _ = await billed_phase_1(greek)
    invoice = (await greek.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)).json()
    milestone_line = next(line for line in invoice["lines"] if line["kind"] == "milestone")
    note = await greek.stack.post(
        f"/v1/invoices/{invoice_id}/credit-notes",
        {
            "reason": "Goodwill: cutover ran a day late",
            "lines": [{"invoice_line_id": milestone_line["id"], "amount_minor": 125_050}],
        },
        headers={"Idempotency-Key": "goodwill-1"},
    )
    assert note.status_code == 201, note.text
    number = note.json()["number"]

    content = await pdf(greek, f"/v1/credit-notes/{note.json()['id']}.pdf")
    page_one_png(content, "credit-note")
    text = text_of(content)
    assert f"Credit note {number}" in text and CUSTOMER in text
    assert f"Credits invoice {invoice['number']}" in text
    assert "Goodwill: cutover ran a day late" in text
    assert "-1,250.50 USD" in text and "Total credited -1,250.50 USD" in text
    issued_by = next(e for e in await audit(greek) if e["kind"] == "credit_note_issued")
    assert compact(issued_by["hash"]) in compact(text)
    accept = "application/json;q=0.5, application/pdf"
    assert await pdf(greek, f"/v1/credit-notes/{note.json()['id']}", Accept=accept) == content
    lead = greek.stack.auth(greek.token("lead"))
    refused = await greek.stack.http.get(f"/v1/credit-notes/{note.json()['id']}.pdf", headers=lead)
    assert_problem(refused, 403)


async def test_a_certificate_pdf_shows_criteria_decisions_evidence_and_the_runs_audit_hashes(
    example: Example,
):
    greek = await greek_customer(example)
    run_id, _, evidence = await billed_phase_1(greek)
    run = await greek.run(run_id)
    path = f"/v1/runs/{run_id}/certificate.pdf"

    content = await pdf(greek, path, greek.token("client"))  # a principal of the engagement
    page_one_png(content, "certificate")
    text = text_of(content)
    assert "SIGN-OFF CERTIFICATE" in text and f"Run{run_id}" in compact(text)
    assert CUSTOMER in text and "Assessment and cutover plan (phase-1)" in text
    assert "Fee 30,000.00 USD" in text and "Net invoiced 27,000.00 USD" in text
    assert "NOT SIGNED OFF" not in text and "IN PROGRESS" not in text
    # The criteria as evaluated: one judged by machine, one left to the approvers.
    assert re.search(r"p95\s.*p95 latency under 300 ms\s+Passed", text, re.S)
    assert "Judged by the approvers" in text
    # Each decision: who, role, how, when in the engagement's time zone, and the comment.
    lead, client = run["decisions"]
    assert (lead["role"], client["role"]) == ("delivery_lead", "client_ap")
    assert "lead (" in text and f"{CONTACT} (" in text  # names, with their ids
    assert text.count("Approver") >= 2 and "approve" in text
    assert local(lead["at"]) in text and local(client["at"]) in text
    assert "Plan delivered" in text and "Согласовано" in text
    assert "Times in America/New_York" in text
    # The evidence with its sha256, and every audit event of the run with its hash.
    assert "phase-1-signoff.pdf" in text
    assert compact(evidence["sha256"]) in compact(text)
    events = [e for e in await audit(greek) if e["run_id"] == run_id]
    assert {"trigger_received", "criteria_evaluated", "decision"} <= {e["kind"] for e in events}
    for event in events:
        assert event["hash"] in compact(text), event["kind"]
    assert await pdf(greek, path) == content  # the admin gets the same bytes

    # A principal of another engagement (the stranger) is refused, as for the run as JSON.
    stranger = greek.stack.auth(greek.token("stranger"))
    assert_problem(await greek.stack.http.get(path, headers=stranger), 403)
    assert_problem(await greek.stack.http.get(f"/v1/runs/{run_id}", headers=stranger), 403)
    assert_problem(await greek.stack.get("/v1/runs/run_missing/certificate.pdf"), 404)


async def test_a_certificate_before_sign_off_is_watermarked_in_progress(example: Example):
    response = await example.trigger("phase-1", {"source": "test"})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    text = text_of(await pdf(example, f"/v1/runs/{run_id}/certificate.pdf"))
    assert "IN PROGRESS" in text and "No decision has been recorded yet." in text


def test_accept_prefers_the_pdf_only_when_it_ranks_above_json():
    assert wants_pdf("application/pdf")
    assert wants_pdf("application/json;q=0.5, application/pdf")
    assert wants_pdf("application/*;q=0.2, application/pdf;q=0.9")
    assert not wants_pdf(None)
    assert not wants_pdf("*/*")
    assert not wants_pdf("application/json, application/pdf")
    assert not wants_pdf("application/pdf;q=0, */*")
    assert not wants_pdf("application/pdf;q=bogus")
