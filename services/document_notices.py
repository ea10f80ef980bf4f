"""Notices about documents: an invoice finalized, a clawback issued (a credit note, or a credit
line while the bonus's invoice is still a draft). Written in the transaction that makes the
document, like every notice (``services.notices``); the outbox row's ``run_id`` names the
document, so a retried activity finds the rows it already wrote.

Who hears: the operators (``TOLLGATE_OPERATORS_EMAIL``); the customer's billing contacts, which
are the principals holding a client role (``approval.client_roles``, e.g. ``client_ap``) on an
engagement the document bills, since a customer records no contact of its own; and every webhook
endpoint subscribed to the event on one of those engagements or on the customer, once each.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    CreditNote,
    Customer,
    Engagement,
    Invoice,
    InvoiceLine,
    Notification,
    Principal,
    WebhookEndpoint,
    new_id,
)
from domain.money import format_minor
from services.notice_content import ENVIRONMENT, Channel
from services.notices import OPERATORS, NoticeKind, subscribed, write_new
from workflows.watch_contracts import WatchInput


@dataclass
class DocumentNotice:
    """What a document says, in the words and figures a person needs, and whom it concerns."""

    kind: NoticeKind
    document_id: str  # the invoice, credit note or credit line: the outbox row's run_id
    customer: Customer
    engagements: Sequence[Engagement]
    currency: str
    headline: str
    facts: list[tuple[str, str]]  # (label, text), in the order an email shows them
    lines: list[tuple[str, int]]  # (description, amount in minor units)
    total: tuple[str, int]  # (label, amount in minor units)
    detail: str | None
    data: dict[str, Any]  # what a webhook carries: amounts as integers of minor units


@dataclass(frozen=True)
class Clawback:
    """What a clawback credited, as the activity that issued it knows it."""

    watch: WatchInput
    invoice: Invoice
    credited: InvoiceLine  # the bonus's own invoice line
    amount_minor: int  # positive: how much was given back
    credit_note: CreditNote | None  # when the invoice was finalized
    credit_line: InvoiceLine | None  # when it was still a draft
    reason: str  # the breach, e.g. "error_rate_pct 0.9 breaks error_rate_pct <= 0.5"
    report: dict[str, Any]  # report_id, kpis, received_at, source, note


def _money(minor: int, currency: str) -> str:
    return f"{format_minor(minor, currency)} {currency}"


def _day(value: date) -> str:
    return value.strftime("%a %d %b %Y")


def invoice_finalized(
    session: Session, invoice: Invoice, lines: Sequence[InvoiceLine], engaged: dict[str, str]
) -> DocumentNotice:
    """The finalized invoice: number, dates, every line and the total. ``engaged`` maps a line
    id to the engagement it bills."""
    assert invoice.number and invoice.issued_on and invoice.due_on, "a finalized invoice"
    engagements = _engagements(session, engaged.values())
    total = _money(invoice.total_minor, invoice.currency)
    headline = f"Invoice {invoice.number} finalized: {total} due {_day(invoice.due_on)}"
    return DocumentNotice(
        kind=NoticeKind.INVOICE_FINALIZED,
        document_id=invoice.id,
        customer=session.get_one(Customer, invoice.customer_id),
        engagements=engagements,
        currency=invoice.currency,
        headline=headline,
        facts=[
            ("Invoice", invoice.number),
            ("Issued", _day(invoice.issued_on)),
            ("Due", _day(invoice.due_on)),
            ("Engagements", ", ".join(e.name for e in engagements) or "-"),
        ],
        lines=[(line.description, line.amount_minor) for line in lines],
        total=("Total", invoice.total_minor),
        detail=None,
        data={
            "invoice_id": invoice.id,
            "number": invoice.number,
            "customer_id": invoice.customer_id,
            "engagement_ids": [e.id for e in engagements],
            "currency": invoice.currency,
            "issued_on": invoice.issued_on.isoformat(),
            "due_on": invoice.due_on.isoformat(),
            "total_minor": invoice.total_minor,
            "lines": [
                {
                    "id": line.id,
                    "kind": line.kind,
                    "description": line.description,
                    "amount_minor": line.amount_minor,
                    "engagement_id": engaged.get(line.id),
                    "milestone_id": line.milestone_id,
                    "run_id": line.run_id,
                }
                for line in lines
            ],
        },
    )


def clawback_issued(session: Session, clawback: Clawback) -> DocumentNotice:
    """The clawback: the credit note (or draft credit line), the invoice and line it credits,
    the amount, and the KPI report that broke the bonus's terms."""
    watch, invoice = clawback.watch, clawback.invoice
    note, credit_line = clawback.credit_note, clawback.credit_line
    invoice_name = invoice.number or f"draft {invoice.id}"
    if note is not None:
        document_id, document = note.id, f"credit note {note.number}"
    elif credit_line is not None:
        document_id, document = credit_line.id, f"credit line on {invoice_name}"
    else:
        raise ValueError("a clawback that credited nothing has no notice")
    amount = _money(clawback.amount_minor, invoice.currency)
    kpi = watch.clawback["kpi"]
    report = clawback.report
    by = " / ".join(str(report[k]) for k in ("source", "note") if report.get(k))
    return DocumentNotice(
        kind=NoticeKind.CLAWBACK_ISSUED,
        document_id=document_id,
        customer=session.get_one(Customer, invoice.customer_id),
        engagements=_engagements(session, [watch.engagement_id]),
        currency=invoice.currency,
        headline=f"Clawback issued: {document}, {amount} ({watch.milestone_name})",
        facts=[
            ("Credit note", note.number if note is not None else "none (the invoice is a draft)"),
            ("Invoice", invoice_name),
            ("Line credited", clawback.credited.description),
            (
                "Clawback",
                f"{watch.clawback['percent']}% of {_money(watch.billed_minor, watch.currency)}",
            ),
            ("KPI", f"{kpi['metric']} {kpi['op']} {kpi['threshold']}"),
            ("Report", f"{report['report_id']}" + (f" ({by})" if by else "")),
        ],
        lines=[(f"Credit: {clawback.credited.description}", -clawback.amount_minor)],
        total=("Credited", -clawback.amount_minor),
        detail=f"Reason: {clawback.reason}",
        data={
            "credit_note_id": note.id if note is not None else None,
            "credit_note_number": note.number if note is not None else None,
            "credit_line_id": credit_line.id if credit_line is not None else None,
            "invoice_id": invoice.id,
            "invoice_number": invoice.number,
            "invoice_status": invoice.status,
            "invoice_line_id": clawback.credited.id,
            "invoice_line": clawback.credited.description,
            "invoice_line_amount_minor": clawback.credited.amount_minor,
            "customer_id": invoice.customer_id,
            "engagement_id": watch.engagement_id,
            "milestone_id": watch.milestone_id,
            "milestone_key": watch.milestone_key,
            "bonus_run_id": watch.bonus_run_id,
            "watch_id": watch.watch_id,
            "currency": invoice.currency,
            "amount_minor": clawback.amount_minor,
            "billed_minor": watch.billed_minor,
            "clawback_percent": watch.clawback["percent"],
            "kpi": kpi,
            "reason": clawback.reason,
            "report": report,
        },
    )


def queue_document(session: Session, notice: DocumentNotice) -> list[int]:
    """Write the notice's rows: operators, billing contacts and subscribed endpoints; rows an
    earlier try wrote are kept. Returns the new rows' ids."""
    rows = [_email(notice, "operator", OPERATORS, None)]
    rows += [_email(notice, role, p.id, p.email) for role, p in _billing_contacts(session, notice)]
    engagement_ids = [e.id for e in notice.engagements]
    for endpoint in subscribed(session, notice.kind, engagement_ids, [notice.customer.id]):
        rows.append(_webhook(notice, endpoint))
    return write_new(session, rows)


def _engagements(session: Session, ids: Iterable[str]) -> Sequence[Engagement]:
    return session.scalars(
        select(Engagement).where(Engagement.id.in_(set(ids))).order_by(Engagement.id)
    ).all()


def _billing_contacts(session: Session, notice: DocumentNotice) -> list[tuple[str, Principal]]:
    """(client role, principal) for each principal holding a client role on the engagements,
    once each (by the first such role)."""
    roles: dict[str, str] = {}
    for engagement in notice.engagements:
        approval = engagement.approval
        for role in approval.get("client_roles") or []:
            for principal_id in approval["roles"].get(role, []):
                roles.setdefault(principal_id, role)
    principals = session.scalars(
        select(Principal).where(Principal.id.in_(roles)).order_by(Principal.id)
    ).all()
    return [(roles[p.id], p) for p in principals]


def _row(
    notice: DocumentNotice, channel: Channel, role: str, recipient_id: str, address: str | None
) -> Notification:
    return Notification(
        run_id=notice.document_id,
        kind=str(notice.kind),
        role=role,
        recipient_id=recipient_id,
        channel=str(channel),
        address=address,
        subject=notice.headline[:300],
        payload={**notice.data, "headline": notice.headline},
        message_id=new_id("msg"),
    )


def _email(
    notice: DocumentNotice, role: str, recipient_id: str, address: str | None
) -> Notification:
    row = _row(notice, Channel.EMAIL, role, recipient_id, address)
    currency = notice.currency
    label, total = notice.total
    context = {
        "headline": notice.headline,
        "customer": notice.customer.name,
        "facts": notice.facts,
        "detail": notice.detail,
        "currency": currency,
        "lines": [(text, format_minor(minor, currency)) for text, minor in notice.lines],
        "total_label": label,
        "total": format_minor(total, currency),
        "document_id": notice.document_id,
        "message_id": row.message_id,
    }
    row.subject = f"[Tollgate] {notice.headline}"[:300]
    row.body_text = ENVIRONMENT.get_template("invoice.txt.j2").render(context)
    row.body_html = ENVIRONMENT.get_template("invoice.html.j2").render(context)
    return row


def _webhook(notice: DocumentNotice, endpoint: WebhookEndpoint) -> Notification:
    return _row(notice, Channel.WEBHOOK, "", endpoint.id, endpoint.url)
