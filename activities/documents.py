"""Turning a draft into a document: gapless numbers, issue and due dates, a frozen total.

A number is taken in the same transaction that finalizes (or issues a credit note), so a
transaction that rolls back never burns one: the series stays gapless.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_, calendar_of
from activities.delivery import Notifier
from activities.encounters import payer_due_on
from db.audit import append_event
from db.models import DocumentSequence, Engagement, Invoice, InvoiceLine
from domain.calendar import parse_span
from domain.documents import (
    DEFAULT_PAYMENT_TERMS,
    InvalidDocumentNumber,
    document_number,
    due_date,
)
from domain.money import format_minor
from domain.times import iso
from services.document_notices import invoice_finalized, queue_document
from services.invoice_lines import engagements_billed, issue_zone, line_engagements
from workflows.invoicing import (
    DraftsPass,
    DueDrafts,
    DueDraftsRequest,
    FinalizedInvoice,
    FinalizeRequest,
)

UTC_ZONE = ZoneInfo("UTC")


class InvoiceNotFound(LookupError):
    """No invoice has that id."""


class InvoiceEmpty(ValueError):
    """A draft with no lines: there is nothing to issue."""


class InvoiceInconsistent(RuntimeError):
    """The stored total differs from the sum of the lines: refuse to freeze a wrong document."""


def next_number(session: Session, series: str, year: int) -> str:
    """The next number of `series` in `year`, e.g. "TG-2026-000042"; creates the series row.

    The row is locked until the caller's transaction ends (FOR UPDATE on PostgreSQL; SQLite
    transactions already hold the write lock from BEGIN IMMEDIATE), so concurrent callers
    take consecutive numbers, and a rollback returns the number unused.
    """
    sequence = _locked_sequence(session, series, year)
    sequence.last += 1
    session.flush()
    return document_number(series, year, sequence.last)


def _locked_sequence(session: Session, series: str, year: int) -> DocumentSequence:
    query = (
        select(DocumentSequence)
        .where(DocumentSequence.series == series, DocumentSequence.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.scalars(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = DocumentSequence(series=series, year=year, last=0)
            session.add(row)
        return row
    except IntegrityError:  # another transaction created the series first: wait for its lock
        return session.scalars(query).one()


def payment_due(engagement: Engagement | None, issued_at: datetime) -> date:
    """The due date under the engagement's payment terms (net 30 days when it sets none, or
    when no engagement is known: then on a plain UTC calendar)."""
    raw = engagement.payment_terms if engagement is not None else None
    terms = parse_span(raw or DEFAULT_PAYMENT_TERMS)
    assert terms is not None
    calendar = (engagement.approval.get("calendar") if engagement is not None else None) or {}
    return due_date(issued_at, terms, calendar_of(calendar))


@dataclass(frozen=True)
class Finalized:
    invoice: Invoice
    newly: bool  # False when the invoice was already finalized (an idempotent repeat)


def finalize_invoice(
    session: Session, invoice_id: str, *, issuer_prefix: str, actor: str, at: datetime
) -> Finalized:
    """Number, date and freeze a draft; an already finalized invoice comes back unchanged.

    The draft row is locked first, and `open_draft` locks it too, so no line can land on an
    invoice while it is being finalized: a later line finds no draft and opens a new one.
    With several engagements on one invoice the earliest due date wins.
    """
    invoice = session.scalars(
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if invoice is None:
        raise InvoiceNotFound(f"no invoice with id {invoice_id!r}")
    if invoice.status == "finalized":
        return Finalized(invoice, newly=False)
    lines = session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    if not lines:
        raise InvoiceEmpty(f"invoice {invoice.id} has no lines: there is nothing to finalize")
    total = sum(line.amount_minor for line in lines)
    if total != invoice.total_minor:
        raise InvoiceInconsistent(
            f"invoice {invoice.id} records a total of {invoice.total_minor} "
            f"but its lines add up to {total}"
        )
    engagements = engagements_billed(session, lines)
    issued_on = at.astimezone(issue_zone(engagements)).date()
    due_dates = [payment_due(e, at) for e in engagements]
    invoice.number = next_number(session, issuer_prefix, issued_on.year)
    invoice.status, invoice.draft_key = "finalized", None
    invoice.finalized_at, invoice.issued_on = at, issued_on
    invoice.due_on = payer_due_on(session, invoice, at) or (
        min(due_dates) if due_dates else payment_due(None, at)
    )
    session.flush()
    for engagement in engagements:
        append_event(
            session,
            engagement_id=engagement.id,
            actor=actor,
            kind="invoice_finalized",
            at=at,
            data={
                "invoice_id": invoice.id,
                "number": invoice.number,
                "issued_on": invoice.issued_on.isoformat(),
                "due_on": invoice.due_on.isoformat(),
                "total_minor": invoice.total_minor,
                "currency": invoice.currency,
                "total": format_minor(invoice.total_minor, invoice.currency),
            },
            dedupe_key=f"{invoice.id}:invoice_finalized:{engagement.id}",
        )
    return Finalized(invoice, newly=True)


def non_empty_drafts(session: Session) -> list[str]:
    """Ids of the drafts that hold at least one line, oldest first."""
    has_lines = exists().where(InvoiceLine.invoice_id == Invoice.id)
    return list(
        session.scalars(
            select(Invoice.id)
            .where(Invoice.status == "draft", has_lines)
            .order_by(Invoice.created_at, Invoice.id)
        )
    )


def due_drafts(session: Session, req: DueDraftsRequest) -> DueDrafts:
    """The next batch of a FinalizeDrafts pass: of the next `req.limit` non-empty drafts (in id
    order after the pass's cursor), those whose local midnight of the boundary day falls in the
    pass's (since, until]; later ones set when the next pass starts."""
    at = at_(req.at)
    progress = req.progress or DraftsPass(
        boundary=at.astimezone(ZoneInfo(req.time_zone)).date().isoformat(), until=req.at
    )
    boundary, until = date.fromisoformat(progress.boundary), at_(progress.until)
    since = at_(progress.since) if progress.since is not None else None
    has_lines = exists().where(InvoiceLine.invoice_id == Invoice.id)
    query = select(Invoice.id).where(Invoice.status == "draft", has_lines)
    if progress.after is not None:
        query = query.where(Invoice.id > progress.after)
    drafts = session.scalars(query.order_by(Invoice.id).limit(req.limit)).all()
    due, next_due = [], _instant(progress.next_due)
    for invoice_id in drafts:
        lines = session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))
        zone = issue_zone(engagements_billed(session, lines))
        due_at = datetime.combine(boundary, time(0), tzinfo=zone)
        if due_at > until:
            next_due = min(next_due or due_at, due_at)
        elif since is None or due_at > since:
            due.append(invoice_id)
    pass_done = len(drafts) < req.limit
    moved = replace(
        progress,
        after=None if pass_done else drafts[-1],
        next_due=iso(next_due) if next_due is not None else None,
    )
    return DueDrafts(due, moved, pass_done)


def _instant(text: str | None) -> datetime | None:
    return at_(text) if text is not None else None


def _finalized_notices(session: Session, invoice: Invoice) -> list[int]:
    lines = session.scalars(
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.created_at, InvoiceLine.kind, InvoiceLine.id)
    ).all()
    notice = invoice_finalized(session, invoice, lines, line_engagements(session, lines))
    return queue_document(session, notice)


class DocumentActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    @activity.defn(name="finalize_invoice")
    def finalize_invoice(self, req: FinalizeRequest) -> FinalizedInvoice:
        """Finalize, and tell of it in the same transaction (a repeat tells nothing again)."""
        try:
            with self._sessions.begin() as session:
                done = finalize_invoice(
                    session,
                    req.invoice_id,
                    issuer_prefix=req.issuer_prefix,
                    actor=req.actor,
                    at=at_(req.at),
                )
                invoice = done.invoice
                assert invoice.number and invoice.issued_on and invoice.due_on
                queued = _finalized_notices(session, invoice) if done.newly else []
                finalized = FinalizedInvoice(
                    invoice_id=invoice.id,
                    number=invoice.number,
                    issued_on=invoice.issued_on.isoformat(),
                    due_on=invoice.due_on.isoformat(),
                    total_minor=invoice.total_minor,
                    newly=done.newly,
                )
        except (InvoiceNotFound, InvoiceEmpty, InvoiceInconsistent, InvalidDocumentNumber) as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        self._notifier.started(queued)
        return finalized

    @activity.defn(name="list_due_drafts")
    def list_due_drafts(self, req: DueDraftsRequest) -> DueDrafts:
        with self._sessions.begin() as session:
            return due_drafts(session, req)

    @activity.defn(name="list_non_empty_drafts")
    def list_non_empty_drafts(self) -> list[str]:
        """For FinalizeDrafts runs started before its batches (see BATCHES_PATCH)."""
        with self._sessions.begin() as session:
            return non_empty_drafts(session)

    def all(self) -> list:
        return [self.finalize_invoice, self.list_due_drafts, self.list_non_empty_drafts]
