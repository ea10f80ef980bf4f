"""Billing: invoices and credit notes, as JSON and as the PDF documents sent to customers."""

from collections.abc import Mapping, Sequence

from api.models import (
    CreditNote,
    CreditNoteSummary,
    Invoice,
    InvoiceSummary,
    IssuedDocument,
    Page,
)
from tollgate_client.calls import Call, content, model, operation, segment

PDF = {"Accept": "application/pdf"}


class BillingOperations:
    @operation
    def list_invoices(
        self, customer_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[InvoiceSummary]]:
        path = f"/v1/customers/{segment(customer_id)}/invoices"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[InvoiceSummary]), params=params)

    @operation
    def get_invoice(self, invoice_id: str) -> Call[Invoice]:
        return Call("GET", f"/v1/invoices/{segment(invoice_id)}", model(Invoice))

    @operation
    def invoice_pdf(self, invoice_id: str) -> Call[bytes]:
        """The invoice as the PDF the customer receives."""
        path = f"/v1/invoices/{segment(invoice_id)}.pdf"
        return Call("GET", path, content, headers=PDF)

    @operation
    def finalize_invoice(self, invoice_id: str) -> Call[Invoice]:
        path = f"/v1/invoices/{segment(invoice_id)}/finalize"
        return Call("POST", path, model(Invoice))

    @operation
    def create_credit_note(
        self,
        invoice_id: str,
        *,
        reason: str,
        lines: Sequence[Mapping[str, object]],
        idempotency_key: str,
    ) -> Call[CreditNote]:
        """Credit lines of a finalized invoice; each line is ``{invoice_line_id, amount_minor,
        description?}``, amounts in integer minor units."""
        return Call(
            "POST",
            f"/v1/invoices/{segment(invoice_id)}/credit-notes",
            model(CreditNote),
            json={"reason": reason, "lines": [dict(line) for line in lines]},
            headers={"Idempotency-Key": idempotency_key},
        )

    @operation
    def get_credit_note(self, credit_note_id: str) -> Call[CreditNote]:
        return Call("GET", f"/v1/credit-notes/{segment(credit_note_id)}", model(CreditNote))

    @operation
    def credit_note_pdf(self, credit_note_id: str) -> Call[bytes]:
        path = f"/v1/credit-notes/{segment(credit_note_id)}.pdf"
        return Call("GET", path, content, headers=PDF)

    @operation
    def list_credit_notes(
        self, customer_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[CreditNoteSummary]]:
        path = f"/v1/customers/{segment(customer_id)}/credit-notes"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[CreditNoteSummary]), params=params)

    @operation
    def certificate_pdf(self, run_id: str) -> Call[bytes]:
        """A billed run's acceptance certificate."""
        path = f"/v1/runs/{segment(run_id)}/certificate.pdf"
        return Call("GET", path, content, headers=PDF)

    @operation
    def issued_document(self, sha256: str) -> Call[IssuedDocument]:
        """The invoice or credit note issued as the PDF with this sha256; a 404
        ``document-not-issued`` ProblemError when no document was issued as that file."""
        return Call("GET", f"/v1/documents/{segment(sha256)}", model(IssuedDocument))
