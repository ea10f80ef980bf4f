"""The documents people read, as PDFs: invoices, credit notes and sign-off certificates.

Readable by whoever may read the same thing as JSON: invoices and credit notes by the admin,
a run's certificate by whoever may see its engagement. The view model is read in one worker
thread (ending the read transaction) and rendered in another: rendering takes CPU, not the
database. ``GET /v1/invoices/{id}`` and ``GET /v1/credit-notes/{id}`` answer with the PDF too
when the request's Accept header prefers ``application/pdf``.

A finalized invoice or an issued credit note is served as the PDF recorded when it was issued
(``services/issued_documents.py``), byte for byte, with its sha256 in ``X-Document-SHA256``;
``GET /v1/documents/{sha256}`` says which document, if any, was issued as a given file.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep
from api.models import IssuedDocument
from api.problems import Problem
from config import Settings
from services.access import load_engagement
from services.callers import Caller
from services.issued_documents import (
    DocumentKind,
    document_by_hash,
    issued_document_view,
    recorded_document,
)
from services.pdf.certificates import certificate, certificate_run
from services.pdf.invoices import credit_note_document, invoice_document
from services.pdf.model import DocumentContext
from services.pdf.render import Document, render_pdf

router = APIRouter(prefix="/v1", tags=["documents"])

PDF = "application/pdf"
SHA256_HEADER = "X-Document-SHA256"
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The PDF; its ETag is its sha256 (the same data gives the same bytes). "
        "An issued invoice or credit note is the PDF recorded when it was issued, and "
        f"{SHA256_HEADER} repeats the sha256 its audit event holds.",
    }
}

# For the JSON routes that answer with the PDF when Accept prefers it.
NEGOTIATED: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {PDF: PDF_RESPONSE[200]["content"][PDF]},
        "description": "JSON, or the PDF when the Accept header prefers application/pdf.",
    }
}
ACCEPT_DESCRIPTION = "application/pdf (ranked above application/json) for the PDF."


@router.get("/invoices/{invoice_id}.pdf", response_class=Response, responses=PDF_RESPONSE)
async def get_invoice_pdf(
    invoice_id: str, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """The invoice as a PDF; a draft is watermarked DRAFT."""
    require_invoice_reader(caller)
    return await pdf_response(session, settings, invoice_document, invoice_id)


@router.get("/credit-notes/{credit_note_id}.pdf", response_class=Response, responses=PDF_RESPONSE)
async def get_credit_note_pdf(
    credit_note_id: str, session: SessionDep, _: AdminDep, settings: SettingsDep
) -> Response:
    return await pdf_response(session, settings, credit_note_document, credit_note_id)


@router.get("/runs/{run_id}/certificate.pdf", response_class=Response, responses=PDF_RESPONSE)
async def get_certificate_pdf(
    run_id: str, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A milestone run's sign-off certificate; before sign-off it is watermarked."""

    def visible_certificate(session: Session, run_id: str, context: DocumentContext) -> Document:
        load_engagement(session, certificate_run(session, run_id).engagement_id, caller)
        return certificate(session, run_id, context)

    return await pdf_response(session, settings, visible_certificate, run_id)


@router.get("/documents/{sha256}")
def get_issued_document(sha256: str, session: SessionDep, _: AdminDep) -> IssuedDocument:
    """Which invoice or credit note was issued as the PDF with this sha256: a 404
    ``document-not-issued`` says a file is not one this server issued, or was altered since."""
    return IssuedDocument.model_validate(issued_document_view(document_by_hash(session, sha256)))


def require_invoice_reader(caller: Caller) -> None:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "Invoices are visible to admin only.")


def wants_pdf(accept: str | None) -> bool:
    """Whether an Accept header ranks application/pdf above JSON (``*/*`` means JSON)."""
    return _quality(accept or "", PDF) > _quality(accept or "", "application/json")


def _quality(accept: str, media_type: str) -> float:
    """The q the header gives the media type through its most specific matching range."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        media_range, *params = (p.strip() for p in part.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower())
        if specificity is None or specificity < best[0]:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        best = (specificity, q)
    return best[1]


async def pdf_response(
    session: Session,
    settings: Settings,
    build: Callable[[Session, str, DocumentContext], Document],
    document_id: str,
) -> Response:
    kind = ISSUED_KINDS.get(build)
    if kind is not None:
        stored = await run_in_threadpool(_stored, session, kind, document_id)
        if stored is not None:
            filename, content = stored
            return _pdf(filename, content, {SHA256_HEADER: hashlib.sha256(content).hexdigest()})
    document = await run_in_threadpool(_read, session, build, document_id, settings)
    return _pdf(document.filename, await run_in_threadpool(render_pdf, document), {})


def _pdf(filename: str, content: bytes, headers: dict[str, str]) -> Response:
    return Response(
        content,
        media_type=PDF,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            **headers,
        },
    )


def _stored(session: Session, kind: DocumentKind, document_id: str) -> tuple[str, bytes] | None:
    """The PDF recorded when the document was issued (none for a draft, or one issued before
    documents were recorded: that one is rendered)."""
    try:
        found = recorded_document(session, kind, document_id)
        return (found.filename, found.content) if found is not None else None
    finally:
        session.rollback()


# The documents that are issued, and so served as recorded when they were.
ISSUED_KINDS: dict[Callable[..., Document], DocumentKind] = {
    invoice_document: DocumentKind.INVOICE,
    credit_note_document: DocumentKind.CREDIT_NOTE,
}


def _read(
    session: Session,
    build: Callable[[Session, str, DocumentContext], Document],
    document_id: str,
    settings: Settings,
) -> Document:
    try:
        return build(session, document_id, DocumentContext.of(settings))
    finally:
        session.rollback()  # only read: nothing stays open while the PDF renders
