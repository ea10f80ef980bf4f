"""Invoices and credit notes as documents: the view model a template fills, built from the
database, and the PDF.

Lines are grouped by the engagement they bill. A finalized invoice (and every credit note) is
anchored to the audit event that issued it, so rendering it again later gives the same bytes;
a draft is anchored to each engagement's chain head at the time of rendering, and watermarked.
"""

from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Engagement,
    Invoice,
    InvoiceLine,
    Milestone,
)
from services.errors import not_found
from services.invoice_lines import issue_zone, line_engagements
from services.pdf.model import (
    Anchor,
    DocumentContext,
    EvidenceItem,
    Issuer,
    anchor,
    chain_head,
    engagements_by_id,
    evidence_items,
    issue_event,
)

KIND_LABELS = {
    "milestone": "Milestone",
    "retention_withheld": "Retention withheld",
    "retention_release": "Retention released",
    "credit": "Credit",
    "time_and_materials": "Time and materials",
    "minimum_true_up": "Minimum true-up",
    "encounter": "Encounter",
}
MILESTONE_KIND_LABELS = {"bonus": "Bonus", "success_fee": "Success fee"}


@dataclass(frozen=True)
class Party:
    name: str
    id: str
    reference: str | None


@dataclass(frozen=True)
class Line:
    label: str
    description: str
    detail: str | None
    amount_minor: int
    evidence: list[EvidenceItem]


@dataclass
class LineGroup:
    engagement_id: str | None
    title: str
    lines: list[Line] = field(default_factory=list)

    @property
    def subtotal_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


@dataclass(frozen=True)
class BillingDocument:
    """An invoice or a credit note, in the words and figures its reader needs."""

    title: str  # "Invoice" | "Credit note"
    number: str
    draft: bool
    document_id: str
    issuer: Issuer
    customer: Party
    currency: str
    issued_on: date | None
    due_on: date | None
    groups: list[LineGroup]
    total_minor: int
    anchors: list[Anchor]
    anchors_at_issue: bool  # False: a draft's anchors are the chains' heads as rendered
    references: list[tuple[str, str]]  # (label, text): what a credit note credits, and why

    template = "billing.html.j2"

    @property
    def filename(self) -> str:
        return f"{self.title.lower().replace(' ', '-')}-{self.number.replace(' ', '-')}.pdf"

    @property
    def watermark(self) -> str | None:
        return "DRAFT" if self.draft else None

    @property
    def created(self) -> str | None:
        return self.issued_on.isoformat() if self.issued_on else None


def invoice_document(
    session: Session, invoice_id: str, context: DocumentContext
) -> BillingDocument:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise not_found("Invoice", invoice_id)
    lines = session.scalars(
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.created_at, InvoiceLine.kind, InvoiceLine.id)
    ).all()
    engaged = line_engagements(session, lines)
    engagements = engagements_by_id(session, sorted(set(engaged.values())))
    groups = _grouped(
        [(engaged.get(line.id), _line(session, line, line.amount_minor)) for line in lines],
        engagements,
    )
    finalized = invoice.status == "finalized"
    anchors = []
    for engagement in engagements.values():
        event = (
            issue_event(session, engagement.id, f"{invoice.id}:invoice_finalized:{engagement.id}")
            if finalized
            else chain_head(session, engagement.id)
        )
        if event is not None:
            anchors.append(anchor(context, engagement, event))
    return BillingDocument(
        title="Invoice",
        number=invoice.number or f"Draft {invoice.id}",
        draft=not finalized,
        document_id=invoice.id,
        issuer=context.issuer,
        customer=_party(session.get_one(Customer, invoice.customer_id)),
        currency=invoice.currency,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        groups=groups,
        total_minor=invoice.total_minor,
        anchors=anchors,
        anchors_at_issue=finalized,
        references=[],
    )


def credit_note_document(
    session: Session, credit_note_id: str, context: DocumentContext
) -> BillingDocument:
    note = session.get(CreditNote, credit_note_id)
    if note is None:
        raise not_found("Credit note", credit_note_id)
    invoice = session.get_one(Invoice, note.invoice_id)
    note_lines = session.scalars(
        select(CreditNoteLine)
        .where(CreditNoteLine.credit_note_id == note.id)
        .order_by(CreditNoteLine.id)
    ).all()
    credited = {
        line.id: line
        for line in session.scalars(
            select(InvoiceLine).where(InvoiceLine.id.in_({n.invoice_line_id for n in note_lines}))
        )
    }
    engaged = line_engagements(session, credited.values())
    engagements = engagements_by_id(session, sorted(set(engaged.values())))
    pairs = []
    for note_line in note_lines:
        line = credited[note_line.invoice_line_id]
        shown = replace(
            _line(session, line, note_line.amount_minor),
            description=note_line.description,
            detail=f"Credits: {line.description}",
        )
        pairs.append((engaged.get(line.id), shown))
    anchors = [
        anchor(context, engagement, event)
        for engagement in engagements.values()
        if (event := issue_event(session, engagement.id, f"{note.id}:credit_note_issued:"))
    ]
    return BillingDocument(
        title="Credit note",
        number=note.number,
        draft=False,
        document_id=note.id,
        issuer=context.issuer,
        customer=_party(session.get_one(Customer, note.customer_id)),
        currency=note.currency,
        issued_on=note.issued_at.astimezone(issue_zone(list(engagements.values()))).date(),
        due_on=None,
        groups=_grouped(pairs, engagements),
        total_minor=note.total_minor,
        anchors=anchors,
        anchors_at_issue=True,
        references=[
            ("Credits invoice", invoice.number or invoice.id),
            ("Reason", note.reason),
        ],
    )


def _line(session: Session, line: InvoiceLine, amount_minor: int) -> Line:
    return Line(
        label=_label(session, line),
        description=line.description,
        detail=_detail(line),
        amount_minor=amount_minor,
        evidence=evidence_items(session, [ref["id"] for ref in line.evidence or []]),
    )


def _label(session: Session, line: InvoiceLine) -> str:
    if line.kind == "milestone" and line.milestone_id:
        milestone = session.get(Milestone, line.milestone_id)
        if milestone is not None and milestone.kind in MILESTONE_KIND_LABELS:
            return MILESTONE_KIND_LABELS[milestone.kind]
    return KIND_LABELS.get(line.kind, line.kind.replace("_", " ").capitalize())


def _detail(line: InvoiceLine) -> str | None:
    """How the amount was reached, where the description does not say it."""
    details = line.details or {}
    if line.kind == "time_and_materials" and "hours" in details:
        entries = details.get("entry_count")
        return f"{details['hours']} h" + (f" from {entries} time entries" if entries else "")
    if line.kind == "encounter" and "encounter_id" in details:
        units = details.get("units")
        return f"Encounter {details['encounter_id']}" + (f", {units} unit(s)" if units else "")
    return None


def _grouped(
    lines: list[tuple[str | None, Line]], engagements: dict[str, Engagement]
) -> list[LineGroup]:
    """Lines by engagement, in the order each engagement first appears; unattributed last."""
    groups: dict[str | None, LineGroup] = {}
    for engagement_id, line in lines:
        if engagement_id not in groups:
            engagement = engagements.get(engagement_id or "")
            title = f"{engagement.name} ({engagement.id})" if engagement else "Other charges"
            groups[engagement_id] = LineGroup(engagement_id, title)
        groups[engagement_id].lines.append(line)
    other = groups.pop(None, None)
    return [*groups.values(), *([other] if other else [])]


def _party(customer: Customer) -> Party:
    return Party(customer.name, customer.id, customer.external_ref)
