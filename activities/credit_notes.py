"""Credit notes: numbered, negative documents against a finalized invoice.

`issue_credit_note` is the one way to credit an invoice, used by the API's workflow and by the
bonus clawback alike. It never credits more of a line than was invoiced, across every earlier
note, and issuing twice under one dedupe key returns the first note.
"""

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_
from activities.documents import next_number
from db.audit import append_event
from db.models import CreditNote, CreditNoteLine, Engagement, Invoice, InvoiceLine, new_id
from domain.credit import CreditExceedsLine, InvalidCredit, check_credit
from domain.money import format_minor
from services.invoice_lines import issue_zone, line_engagements
from workflows.invoicing import CreditLine, IssueCreditNoteInput, IssuedCreditNote

__all__ = ["CreditLine", "CreditNoteActivities", "CreditRefused", "issue_credit_note"]


class CreditRefused(Exception):
    """A credit note that must not be issued; the message says why (status, line, limit).

    `status` is the HTTP status the API answers with: 404 unknown invoice, 409 an invoice
    that is not finalized, 422 a bad line, amount or reason.
    """

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def credited_so_far(session: Session, invoice_id: str) -> dict[str, int]:
    """Invoice line id → the positive total already credited on it by earlier notes."""
    rows = session.execute(
        select(CreditNoteLine.invoice_line_id, func.sum(CreditNoteLine.amount_minor))
        .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
        .where(CreditNote.invoice_id == invoice_id)
        .group_by(CreditNoteLine.invoice_line_id)
    )
    return {line_id: -int(total) for line_id, total in rows}


def check_credit_lines(
    session: Session, invoice: Invoice, lines: list[CreditLine]
) -> dict[str, InvoiceLine]:
    """Raise CreditRefused unless every line may be credited; the credited invoice lines by id.

    Several lines of one request on the same invoice line count together against its limit.
    """
    if invoice.status != "finalized":
        raise CreditRefused(
            f"invoice {invoice.id} is {invoice.status}: only a finalized invoice can be credited",
            409,
        )
    if not lines:
        raise CreditRefused("a credit note needs at least one line", 422)
    invoice_lines = {
        line.id: line
        for line in session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    }
    credited = credited_so_far(session, invoice.id)
    for credit in lines:
        line = invoice_lines.get(credit.invoice_line_id)
        if line is None:
            raise CreditRefused(
                f"line {credit.invoice_line_id!r} is not on invoice {invoice.id}", 422
            )
        already = credited.get(line.id, 0)
        try:
            check_credit(
                line.amount_minor,
                already,
                credit.amount_minor,
                describe=lambda minor: (
                    f"{format_minor(minor, invoice.currency)} {invoice.currency}"
                ),
                line_id=line.id,
            )
        except (CreditExceedsLine, InvalidCredit) as exc:
            raise CreditRefused(str(exc), 422) from exc
        credited[line.id] = already + credit.amount_minor
    return invoice_lines


def issue_credit_note(
    session: Session,
    *,
    invoice_id: str,
    lines: list[CreditLine],
    reason: str,
    source: str,
    actor: str,
    dedupe_key: str,
    at: datetime,
    issuer_prefix: str,
    evidence: list[dict] | None = None,
) -> CreditNote:
    """Issue a numbered credit note (series "<prefix>-CN") in the caller's transaction.

    Idempotent by `dedupe_key`: a repeat returns the note already issued. Raises CreditRefused
    and writes nothing when the invoice is unknown or not finalized, a line is not on it, or an
    amount exceeds what is still creditable on its line.
    """
    # Lock the invoice: credit notes against it are serialized, so limits hold under races.
    invoice = session.scalars(
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if invoice is None:
        raise CreditRefused(f"no invoice with id {invoice_id!r}", 404)
    existing = session.scalar(select(CreditNote).where(CreditNote.dedupe_key == dedupe_key))
    if existing is not None:
        return existing
    if not reason.strip():
        raise CreditRefused("a credit note needs a reason", 422)
    invoice_lines = check_credit_lines(session, invoice, lines)
    engaged = line_engagements(session, invoice_lines.values())
    engagements = session.scalars(
        select(Engagement).where(Engagement.id.in_(set(engaged.values())))
    ).all()
    year = at.astimezone(issue_zone(engagements)).year
    note = CreditNote(
        id=new_id("crn"),
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        number=next_number(session, f"{issuer_prefix}-CN", year),
        reason=reason,
        source=source,
        total_minor=-sum(credit.amount_minor for credit in lines),
        dedupe_key=dedupe_key,
        actor=actor,
        issued_at=at,
    )
    line_ids = new_id("cnl")  # one stem, numbered: the lines sort in the order given
    note_lines = [
        CreditNoteLine(
            id=f"{line_ids}_{n:03d}",
            credit_note_id=note.id,
            invoice_line_id=credit.invoice_line_id,
            description=credit.description
            or f"Credit: {invoice_lines[credit.invoice_line_id].description}",
            amount_minor=-credit.amount_minor,
            details=credit.details,
        )
        for n, credit in enumerate(lines, start=1)
    ]
    session.add(note)
    session.flush()
    session.add_all(note_lines)
    session.flush()
    _audit(session, note, note_lines, invoice_lines, engaged, evidence or [])
    return note


def _audit(
    session: Session,
    note: CreditNote,
    note_lines: list[CreditNoteLine],
    invoice_lines: dict[str, InvoiceLine],
    engaged: dict[str, str],
    evidence: list[dict],
) -> None:
    """One `credit_note_issued` event per engagement, milestone and run the note credits."""
    groups: dict[tuple[str, str | None, str | None], list[CreditNoteLine]] = defaultdict(list)
    for line in note_lines:
        credited = invoice_lines[line.invoice_line_id]
        engagement_id = engaged.get(credited.id)
        if engagement_id is not None:
            groups[(engagement_id, credited.milestone_id, credited.run_id)].append(line)
    for (engagement_id, milestone_id, run_id), lines in groups.items():
        append_event(
            session,
            engagement_id=engagement_id,
            milestone_id=milestone_id,
            run_id=run_id,
            actor=note.actor,
            kind="credit_note_issued",
            at=note.issued_at,
            evidence=evidence,
            data={
                "credit_note_id": note.id,
                "number": note.number,
                "invoice_id": note.invoice_id,
                "reason": note.reason,
                "source": note.source,
                "currency": note.currency,
                "total_minor": note.total_minor,
                "lines": [_line_data(line) for line in lines],
            },
            dedupe_key=f"{note.id}:credit_note_issued:{engagement_id}:{milestone_id}:{run_id}",
        )


def _money(minor: int, currency: str) -> str:
    return f"{format_minor(minor, currency)} {currency}"


def _line_data(line: CreditNoteLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "invoice_line_id": line.invoice_line_id,
        "description": line.description,
        "amount_minor": line.amount_minor,
        "details": line.details,
    }


class CreditNoteActivities:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    @activity.defn(name="issue_credit_note")
    def issue_credit_note(self, req: IssueCreditNoteInput) -> IssuedCreditNote:
        assert req.at is not None, "the workflow dates the request"
        try:
            with self._sessions.begin() as session:
                note = issue_credit_note(
                    session,
                    invoice_id=req.invoice_id,
                    lines=list(req.lines),
                    reason=req.reason,
                    source=req.source,
                    actor=req.actor,
                    dedupe_key=req.dedupe_key,
                    at=at_(req.at),
                    issuer_prefix=req.issuer_prefix,
                    evidence=req.evidence or None,
                )
                return IssuedCreditNote(note.id, note.number, note.total_minor)
        except CreditRefused as refused:
            raise ApplicationError(
                refused.message,
                {"status": refused.status},
                type="CreditRefused",
                non_retryable=True,
            ) from refused
