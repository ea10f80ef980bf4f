"""Invoices become documents: finalizing one draft, all drafts (the Schedule), credit notes.

Decisions only: numbering, dating and crediting are activities (activities/documents.py and
activities/credit_notes.py), each one transaction, idempotent under retries.
"""

from dataclasses import dataclass, field, replace
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_calls import activity_caller
    from workflows.approval import iso

# Business errors: retrying cannot fix them.
_activity = activity_caller(
    "InvoiceNotFound",
    "InvoiceEmpty",
    "InvoiceInconsistent",
    "InvalidDocumentNumber",
    "CreditRefused",
)
FINALIZE_DRAFTS_SCHEDULE_ID = "tollgate-finalize-drafts"


@dataclass(frozen=True)
class CreditLine:
    """One line of a credit note: how much of an invoice line to give back."""

    invoice_line_id: str
    amount_minor: int  # positive: how much of that line to credit
    description: str
    details: dict[str, Any] | None = None


@dataclass
class FinalizeInput:
    invoice_id: str
    issuer_prefix: str
    actor: str


@dataclass
class FinalizeRequest:
    """The activity's input: the workflow's input plus the instant that dates the invoice."""

    invoice_id: str
    issuer_prefix: str
    actor: str
    at: str


@dataclass
class FinalizedInvoice:
    invoice_id: str
    number: str
    issued_on: str
    due_on: str
    total_minor: int
    newly: bool


@dataclass
class FinalizeDraftsInput:
    issuer_prefix: str
    actor: str = "schedule"


@dataclass
class IssueCreditNoteInput:
    invoice_id: str
    lines: list[CreditLine]
    reason: str
    source: str
    actor: str
    dedupe_key: str
    issuer_prefix: str
    evidence: list[dict[str, str]] = field(default_factory=list)
    at: str | None = None  # set by the workflow before it calls the activity


@dataclass
class IssuedCreditNote:
    credit_note_id: str
    number: str
    total_minor: int


def _finalize(invoice_id: str, issuer_prefix: str, actor: str) -> Any:
    request = FinalizeRequest(invoice_id, issuer_prefix, actor, iso(workflow.now()))
    return _activity(
        "finalize_invoice", request, FinalizedInvoice, f"finalize invoice {invoice_id}"
    )


@workflow.defn
class FinalizeInvoice:
    """Number, date and freeze one invoice. Id ``finalize-<invoice id>``: at most one at a time."""

    @workflow.run
    async def run(self, inp: FinalizeInput) -> FinalizedInvoice:
        result: FinalizedInvoice = await _finalize(inp.invoice_id, inp.issuer_prefix, inp.actor)
        return result


@workflow.defn
class FinalizeDrafts:
    """Finalize every draft that has lines (run by the Schedule); empty drafts stay open.

    Returns the numbers issued by this run, in order.
    """

    @workflow.run
    async def run(self, inp: FinalizeDraftsInput) -> list[str]:
        drafts: list[str] = await _activity(
            "list_non_empty_drafts", None, list[str], "list drafts with lines"
        )
        numbers = []
        for invoice_id in drafts:
            try:
                result: FinalizedInvoice = await _finalize(invoice_id, inp.issuer_prefix, inp.actor)
            except ActivityError as err:
                # A draft emptied or finalized by hand meanwhile is no reason to stop the batch.
                workflow.logger.warning("draft %s not finalized: %s", invoice_id, err.cause)
                continue
            if result.newly:
                numbers.append(result.number)
        return numbers


@workflow.defn
class IssueCreditNote:
    """Issue one credit note. Id ``credit-<hash of the dedupe key>``."""

    @workflow.run
    async def run(self, inp: IssueCreditNoteInput) -> IssuedCreditNote:
        request = replace(inp, at=iso(workflow.now()))
        result: IssuedCreditNote = await _activity(
            "issue_credit_note",
            request,
            IssuedCreditNote,
            f"credit note on invoice {inp.invoice_id} ({inp.source})",
        )
        return result
