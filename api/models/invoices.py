"""Invoices and credit notes. Money is in minor units of the document's currency."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT, CUSTOMER_ID
from api.models.engagements import MILESTONE_ID
from api.models.runs import RUN_ID

INVOICE_ID = "inv_01JC3QF6G7H8J9K0M1N2P3Q4R5"
CREDIT_NOTE_ID = "crn_01JC3QG7H8J9K0M1N2P3Q4R5S6"
LINE_ID = "inl_01JC3QH8J9K0M1N2P3Q4R5S6T7"
DOCUMENT_SHA256 = "3f1c9a7e5b2d4c6e8a0b1d3f5e7c9a2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a"


class InvoiceSummary(ApiModel):
    id: str = Field(description="The invoice's id.", examples=[INVOICE_ID])
    number: str | None = Field(
        description="Its number, given when finalized (null while a draft).",
        examples=["TG-2026-000042"],
    )
    status: str = Field(description="draft or finalized.", examples=["finalized"])
    currency: str = Field(description="ISO 4217 code of its amounts.", examples=["EUR"])
    total_minor: int = Field(description="Sum of its lines, in minor units.", examples=[1140000])
    customer_id: str = Field(description="The customer billed.", examples=[CUSTOMER_ID])
    created_at: str = Field(
        description="When the draft was opened (ISO 8601).", examples=[CREATED_AT]
    )
    finalized_at: str | None = Field(
        description="When it was finalized (ISO 8601).", examples=["2026-11-30T17:00:00Z"]
    )
    issued_on: str | None = Field(
        description="Issue date (ISO 8601 date).", examples=["2026-11-30"]
    )
    due_on: str | None = Field(description="Due date (ISO 8601 date).", examples=["2026-12-30"])
    document_sha256: str | None = Field(
        None,
        description="The sha256 of the PDF issued when it was finalized, also in the audit's "
        "`document_issued` event; null while a draft.",
        examples=[DOCUMENT_SHA256],
    )


class InvoiceLine(ApiModel):
    id: str = Field(description="The line's id.", examples=[LINE_ID])
    kind: str = Field(
        description="milestone, retention, retention_release, time, encounters, …",
        examples=["milestone"],
    )
    description: str = Field(description="The line's text.", examples=["Go-live"])
    amount_minor: int = Field(
        description="The line's amount, in minor units (negative for retention held).",
        examples=[1200000],
    )
    milestone_id: str | None = Field(
        description="The milestone billed, if any.", examples=[MILESTONE_ID]
    )
    run_id: str | None = Field(description="The run that billed it, if any.", examples=[RUN_ID])
    evidence: list[Any] = Field(
        description="Evidence cited for the line (ids and hashes).",
        examples=[[{"id": "evd_01JC3QE5F6G7H8J9K0M1N2P3Q4", "sha256": "9f86d08…"}]],
    )
    details: dict[str, Any] | None = Field(
        description="How the amount was computed when not simply the fee.", examples=[None]
    )


class CreditNoteSummary(ApiModel):
    id: str = Field(description="The credit note's id.", examples=[CREDIT_NOTE_ID])
    number: str = Field(description="Its number.", examples=["TG-CN-2026-000003"])
    invoice_id: str = Field(description="The invoice it credits.", examples=[INVOICE_ID])
    customer_id: str = Field(description="The customer credited.", examples=[CUSTOMER_ID])
    status: str = Field(description="Always `issued`.", examples=["issued"])
    currency: str = Field(description="ISO 4217 code of its amounts.", examples=["EUR"])
    total_minor: int = Field(
        description="Sum of its lines, in minor units (negative).", examples=[-100000]
    )
    reason: str = Field(description="Why it was issued.", examples=["Go-live slipped a week"])
    source: str = Field(description="manual or clawback.", examples=["manual"])
    issued_at: str = Field(
        description="When it was issued (ISO 8601).", examples=["2026-12-02T10:00:00Z"]
    )
    document_sha256: str | None = Field(
        None,
        description="The sha256 of the PDF issued with it, also in the audit's "
        "`document_issued` event.",
        examples=[DOCUMENT_SHA256],
    )


class CreditNoteLine(ApiModel):
    id: str = Field(description="The line's id.", examples=["cnl_01JC3QJ9K0M1N2P3Q4R5S6T7U8"])
    invoice_line_id: str = Field(description="The invoice line credited.", examples=[LINE_ID])
    description: str = Field(description="The line's text.", examples=["Credit: Go-live"])
    amount_minor: int = Field(
        description="The amount credited, in minor units (negative).", examples=[-100000]
    )
    details: dict[str, Any] | None = Field(
        description="How a clawback computed it, if it did.", examples=[None]
    )


class Invoice(InvoiceSummary):
    lines: list[InvoiceLine] = Field(
        description="Its lines, oldest first.", examples=[[example_of(InvoiceLine)]]
    )
    credit_notes: list[CreditNoteSummary] = Field(
        description="Credit notes issued against it.", examples=[[]]
    )


class CreditNote(CreditNoteSummary):
    lines: list[CreditNoteLine] = Field(
        description="Its lines.", examples=[[example_of(CreditNoteLine)]]
    )


class IssuedDocument(ApiModel):
    """A PDF as it was issued: an invoice when finalized, a credit note when issued."""

    sha256: str = Field(description="The PDF's sha256.", examples=[DOCUMENT_SHA256])
    size: int = Field(description="The PDF's size in bytes.", examples=[48213])
    kind: str = Field(description="invoice or credit_note.", examples=["invoice"])
    document_id: str = Field(
        description="The invoice's or credit note's id.", examples=[INVOICE_ID]
    )
    number: str = Field(description="Its number.", examples=["TG-2026-000042"])
    filename: str = Field(
        description="The file's name as served.", examples=["invoice-TG-2026-000042.pdf"]
    )
    issued_at: str = Field(
        description="When the PDF was recorded (ISO 8601).", examples=["2026-11-30T17:00:00Z"]
    )
