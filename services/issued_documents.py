"""Documents as issued: the PDF of a finalized invoice or an issued credit note, rendered once
when it is issued, kept byte for byte, its sha256 on the invoice or credit note and in a
``document_issued`` event of each engagement chain the document is anchored to.

The bytes are stored rather than rendered again on each request: the issuer's settings, the
fonts or WeasyPrint may change later, and the file a customer was sent must stay the one served
and the one whose hash the audit holds. Whoever holds a PDF can ask whether it is one of these
by its sha256 (``GET /v1/documents/{sha256}``, ``tollgate documents verify FILE``).
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import CreditNote, Invoice, IssuedDocument
from domain.times import iso
from services.errors import Problem
from services.pdf.invoices import BillingDocument, credit_note_document, invoice_document
from services.pdf.model import DocumentContext


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class NotIssued(ValueError):
    """The invoice is unknown or still a draft, or the credit note is unknown."""


@dataclass(frozen=True)
class Issued:
    """A PDF to record: the view model it was rendered from and its bytes."""

    document: BillingDocument
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def recorded_document(
    session: Session, kind: DocumentKind, document_id: str
) -> IssuedDocument | None:
    """The PDF recorded when the document was issued; None for a draft, or a document issued
    before documents were recorded."""
    return session.scalar(
        select(IssuedDocument).where(
            IssuedDocument.kind == kind, IssuedDocument.document_id == document_id
        )
    )


def issued_view(
    session: Session, kind: DocumentKind, document_id: str, context: DocumentContext
) -> BillingDocument:
    """The view model of an issued document, to be rendered (outside the transaction)."""
    if kind == DocumentKind.INVOICE:
        invoice = session.get(Invoice, document_id)
        if invoice is None or invoice.status != "finalized":
            raise NotIssued(f"invoice {document_id} is not finalized: it has no issued PDF")
        return invoice_document(session, document_id, context)
    if session.get(CreditNote, document_id) is None:
        raise NotIssued(f"no credit note with id {document_id!r}")
    return credit_note_document(session, document_id, context)


def record_issued(
    session: Session, kind: DocumentKind, issued: Issued, *, actor: str, at: datetime
) -> IssuedDocument:
    """Keep the PDF and audit it, once: a document already recorded (a retry, or a race) comes
    back as first recorded and this rendering is dropped."""
    document = issued.document
    row = _locked_row(session, kind, document.document_id)
    if row.document_sha256 is not None:
        existing = recorded_document(session, kind, document.document_id)
        assert existing is not None
        return existing
    record = IssuedDocument(
        sha256=issued.sha256,
        kind=kind,
        document_id=document.document_id,
        number=document.number,
        filename=document.filename,
        size=len(issued.content),
        content=issued.content,
        issued_at=at,
    )
    session.add(record)
    row.document_sha256 = record.sha256
    session.flush()
    for group in document.groups:
        if group.engagement_id is None:
            continue
        append_event(
            session,
            engagement_id=group.engagement_id,
            actor=actor,
            kind="document_issued",
            at=at,
            data={
                "document": kind.value,
                "document_id": document.document_id,
                "number": document.number,
                "filename": record.filename,
                "sha256": record.sha256,
                "size": record.size,
            },
            dedupe_key=f"{document.document_id}:document_issued:{group.engagement_id}",
        )
    return record


def issued_document_view(document: IssuedDocument) -> dict[str, Any]:
    return {
        "sha256": document.sha256,
        "size": document.size,
        "kind": document.kind,
        "document_id": document.document_id,
        "number": document.number,
        "filename": document.filename,
        "issued_at": iso(document.issued_at),
    }


def document_by_hash(session: Session, sha256: str) -> IssuedDocument:
    """The issued document whose PDF has this sha256, or a 404 that says it is not one."""
    text = sha256.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            "A document's sha256 is 64 hexadecimal digits.",
            [{"field": "sha256", "message": "expected 64 hexadecimal digits"}],
        )
    found = session.get(IssuedDocument, text)
    if found is None:
        raise Problem(
            404,
            "document-not-issued",
            "Not an issued document",
            f"No invoice or credit note was issued as a PDF with sha256 {text}: the file is not "
            "one this server issued, or it was altered since.",
        )
    return found


def _locked_row(session: Session, kind: DocumentKind, document_id: str) -> Invoice | CreditNote:
    model: type[Invoice] | type[CreditNote] = (
        Invoice if kind == DocumentKind.INVOICE else CreditNote
    )
    row = session.scalars(
        select(model)
        .where(model.id == document_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotIssued(f"no {kind.value.replace('_', ' ')} with id {document_id!r}")
    return row
