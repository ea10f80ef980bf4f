"""Credit notes: issued against a finalized invoice by the IssueCreditNote workflow.

The request is checked here first, with the same rules the activity applies, so bad input gets
a fast, clear 4xx and starts nothing; the activity checks again under the invoice's lock.
"""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.common import WorkflowIDConflictPolicy

from activities.credit_notes import CreditRefused, check_credit_lines
from api.deps import AdminDep, SessionDep, SettingsDep, TemporalDep
from api.models import CreditNote as CreditNoteOut
from api.models import CreditNoteSummary, Page
from api.problems import Problem, not_found
from api.routes.documents import ACCEPT_DESCRIPTION, NEGOTIATED, pdf_response, wants_pdf
from api.routes.invoices import credit_refused, outcome_of
from api.routes.listings import Cursor, Limit, keyset_page
from api.schemas import CreditLineIn, CreditNoteIn
from api.views import credit_note_summary, credit_note_view
from db.models import CreditNote, CreditNoteLine, Customer, Invoice, InvoiceLine
from services.pdf.invoices import credit_note_document
from workflows.invoicing import CreditLine, IssueCreditNote, IssueCreditNoteInput

router = APIRouter(prefix="/v1", tags=["credit notes"])


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    status_code=201,
    response_description="Issued.",
    responses={
        200: {
            "model": CreditNoteOut,
            "description": "Issued before under this Idempotency-Key: the same credit note.",
        }
    },
)
async def post_credit_note(
    invoice_id: str,
    body: CreditNoteIn,
    response: Response,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> CreditNoteOut:
    """Issue a credit note once per Idempotency-Key: a retry with the same body gets the same
    note (200), a different body under the same key is refused (422)."""
    if not idempotency_key or not idempotency_key.strip():
        raise Problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            "Send an Idempotency-Key header (at most 255 characters) with every credit note.",
        )
    if len(idempotency_key) > 255:
        raise Problem(
            400,
            "idempotency-key-too-long",
            "Idempotency-Key too long",
            "The Idempotency-Key header must be at most 255 characters.",
        )
    dedupe_key = f"api:{invoice_id}:{idempotency_key}"
    checked = await run_in_threadpool(check_request, session, invoice_id, dedupe_key, body)
    if isinstance(checked, CreditNote):
        response.status_code = 200
        return CreditNoteOut.model_validate(
            await run_in_threadpool(credit_note_view, session, checked)
        )
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    issued = await outcome_of(
        temporal.execute_workflow(
            IssueCreditNote.run,
            IssueCreditNoteInput(
                invoice_id=invoice_id,
                lines=checked,
                reason=body.reason,
                source="manual",
                actor=caller.actor,
                dedupe_key=dedupe_key,
                issuer_prefix=settings.issuer_prefix,
            ),
            id=f"credit-{digest}",
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"credit note on invoice {invoice_id}",
        ),
        "The credit note",
    )
    note = await run_in_threadpool(session.get_one, CreditNote, issued.credit_note_id)
    # Two requests racing under one key share one workflow: the loser's body may differ.
    await run_in_threadpool(_require_same_request, session, note, body.reason, checked)
    return CreditNoteOut.model_validate(await run_in_threadpool(credit_note_view, session, note))


def check_request(
    session: Session, invoice_id: str, dedupe_key: str, body: CreditNoteIn
) -> CreditNote | list[CreditLine]:
    """The note already issued under this key, or the request's lines, checked and described.

    Ends with the read transaction closed: the workflow's activity takes the invoice's lock.
    """
    try:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            raise not_found("Invoice", invoice_id)
        invoice_lines = {
            line.id: line
            for line in session.scalars(
                select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
            )
        }
        lines = [_described(c, invoice_lines) for c in body.lines]
        existing = session.scalar(select(CreditNote).where(CreditNote.dedupe_key == dedupe_key))
        if existing is not None:
            _require_same_request(session, existing, body.reason, lines)
            return existing
        try:
            check_credit_lines(session, invoice, lines)
        except CreditRefused as refused:
            raise credit_refused(refused.status, refused.message) from refused
        return lines
    finally:
        session.rollback()


def _described(line: CreditLineIn, invoice_lines: dict[str, InvoiceLine]) -> CreditLine:
    """The request's line; without a description it is "Credit: <the invoice line's>"."""
    credited = invoice_lines.get(line.invoice_line_id)
    default = f"Credit: {credited.description}" if credited is not None else ""
    return CreditLine(line.invoice_line_id, line.amount_minor, line.description or default)


def _require_same_request(
    session: Session, note: CreditNote, reason: str, lines: list[CreditLine]
) -> None:
    stored = session.execute(
        select(
            CreditNoteLine.invoice_line_id, CreditNoteLine.amount_minor, CreditNoteLine.description
        )
        .where(CreditNoteLine.credit_note_id == note.id)
        .order_by(CreditNoteLine.id)
    ).all()
    requested = [(c.invoice_line_id, -c.amount_minor, c.description) for c in lines]
    if note.reason != reason or [tuple(row) for row in stored] != requested:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            f"Credit note {note.number} was issued under this Idempotency-Key with a different "
            "body; use a new key for a new credit note.",
        )


@router.get("/credit-notes/{credit_note_id}", response_model=CreditNoteOut, responses=NEGOTIATED)
async def get_credit_note(
    credit_note_id: str,
    session: SessionDep,
    _: AdminDep,
    settings: SettingsDep,
    accept: Annotated[str | None, Header(description=ACCEPT_DESCRIPTION)] = None,
) -> Response | CreditNoteOut:
    """The credit note as JSON, or as a PDF when Accept prefers application/pdf."""
    if wants_pdf(accept):
        return await pdf_response(session, settings, credit_note_document, credit_note_id)
    return await run_in_threadpool(_credit_note_json, session, credit_note_id)


def _credit_note_json(session: Session, credit_note_id: str) -> CreditNoteOut:
    note = session.get(CreditNote, credit_note_id)
    if note is None:
        raise not_found("Credit note", credit_note_id)
    return CreditNoteOut.model_validate(credit_note_view(session, note))


@router.get("/customers/{customer_id}/credit-notes")
def list_credit_notes(
    customer_id: str,
    session: SessionDep,
    _: AdminDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CreditNoteSummary]:
    """The customer's credit notes, oldest first."""
    if session.get(Customer, customer_id) is None:
        raise not_found("Customer", customer_id)
    query = select(CreditNote).where(CreditNote.customer_id == customer_id)
    rows, next_cursor = keyset_page(
        session, query, CreditNote.issued_at, CreditNote.id, cursor, limit
    )
    return Page[CreditNoteSummary](
        items=[credit_note_summary(note) for note in rows], next_cursor=next_cursor
    )
