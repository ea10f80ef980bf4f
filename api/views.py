"""Response shapes: database rows and workflow status as the JSON docs/api.md describes."""

from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    AuditEvent,
    ChangeOrder,
    CreditNote,
    CreditNoteLine,
    Customer,
    Decision,
    EngagementVersion,
    Evidence,
    Invoice,
    InvoiceLine,
    Run,
)
from domain.times import iso
from workflows.contracts import RunStatus
from workflows.watch_contracts import WatchStatus


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "currency": customer.currency,
        "external_ref": customer.external_ref,
        "metadata": customer.metadata_,
        "created_at": iso(customer.created_at),
    }


def evidence_view(evidence: Evidence) -> dict[str, Any]:
    return {
        "id": evidence.id,
        "sha256": evidence.sha256,
        "size": evidence.size,
        "content_type": evidence.content_type,
        "filename": evidence.filename,
        "description": evidence.description,
        "created_at": iso(evidence.created_at),
    }


def run_status_view(status: RunStatus, run: Run | None = None) -> dict[str, Any]:
    """The workflow's status; with the run's row, the facts recorded there (its confirmation)."""
    body = asdict(status)
    body["decisions"] = [{k: v for k, v in d.items()} for d in body["decisions"]]
    if run is not None and run.kind == "milestone":
        body["confirmation_id"] = run.confirmation_id
        body["period"] = run.period
    return body


def run_amounts(run: Run) -> dict[str, int | None] | None:
    """A run's recorded amounts, once it has any (from billing)."""
    if run.gross_minor is None:
        return None
    return {
        "gross_minor": run.gross_minor,
        "retention_minor": run.retention_minor,
        "net_minor": run.net_minor,
    }


def run_row_view(session: Session, run: Run) -> dict[str, Any]:
    """The run as recorded in the database: used when the workflow cannot be queried."""
    decisions = session.scalars(
        select(Decision).where(Decision.run_id == run.id).order_by(Decision.id)
    ).all()
    return {
        "run_id": run.id,
        "kind": run.kind,
        "engagement_id": run.engagement_id,
        "milestone_id": run.milestone_id,
        "stage": run.stage,
        "pending_roles": [],
        "escalated_roles": [],
        "decisions": [
            {
                "role": d.role,
                "principal_id": d.principal_id,
                "decision": d.decision,
                "via": d.via,
                "comment": d.comment or "",
                "at": iso(d.at),
                "evidence_ids": d.evidence_ids,
            }
            for d in decisions
        ],
        "deadlines": {},
        "criteria": [],
        "waiting_on": [],
        "amounts": run_amounts(run),
        "invoice_id": run.invoice_id,
        "outcome": run.outcome,
        "outcome_detail": run.outcome_detail,
        "details": run_row_details(session, run),
        **(
            {"confirmation_id": run.confirmation_id, "period": run.period}
            if run.kind == "milestone"
            else {}
        ),
    }


def invoice_summary(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "currency": invoice.currency,
        "total_minor": invoice.total_minor,
        "customer_id": invoice.customer_id,
        "created_at": iso(invoice.created_at),
        "finalized_at": iso(invoice.finalized_at),
        "issued_on": invoice.issued_on.isoformat() if invoice.issued_on else None,
        "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        "document_sha256": invoice.document_sha256,
    }


def invoice_view(session: Session, invoice: Invoice) -> dict[str, Any]:
    lines = session.scalars(
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.created_at, InvoiceLine.kind)
    ).all()
    return {
        **invoice_summary(invoice),
        "lines": [
            {
                "id": line.id,
                "kind": line.kind,
                "description": line.description,
                "amount_minor": line.amount_minor,
                "milestone_id": line.milestone_id,
                "run_id": line.run_id,
                "evidence": line.evidence,
                "details": line.details,
            }
            for line in lines
        ],
        "credit_notes": [
            credit_note_summary(note)
            for note in session.scalars(
                select(CreditNote)
                .where(CreditNote.invoice_id == invoice.id)
                .order_by(CreditNote.issued_at, CreditNote.number)
            )
        ],
    }


def audit_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "actor": event.actor,
        "kind": event.kind,
        "milestone_id": event.milestone_id,
        "run_id": event.run_id,
        "data": event.data,
        "evidence": event.evidence,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def credit_note_summary(note: CreditNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "number": note.number,
        "invoice_id": note.invoice_id,
        "customer_id": note.customer_id,
        "status": "issued",
        "currency": note.currency,
        "total_minor": note.total_minor,
        "reason": note.reason,
        "source": note.source,
        "issued_at": iso(note.issued_at),
        "document_sha256": note.document_sha256,
    }


def credit_note_view(session: Session, note: CreditNote) -> dict[str, Any]:
    lines = session.scalars(
        select(CreditNoteLine)
        .where(CreditNoteLine.credit_note_id == note.id)
        .order_by(CreditNoteLine.id)
    ).all()
    return {
        **credit_note_summary(note),
        "lines": [
            {
                "id": line.id,
                "invoice_line_id": line.invoice_line_id,
                "description": line.description,
                "amount_minor": line.amount_minor,
                "details": line.details,
            }
            for line in lines
        ],
    }


def change_order_view(order: ChangeOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "engagement_id": order.engagement_id,
        "reason": order.reason,
        "changes": order.changes,
        "status": order.status,
        "base_version": order.base_version,
        "version": order.version,
        "run_id": order.run_id,
        "detail": order.detail,
        "proposed_by": order.proposed_by,
        "created_at": iso(order.created_at),
        "decided_at": iso(order.decided_at),
    }


def engagement_version_view(stored: EngagementVersion) -> dict[str, Any]:
    """The engagement as it stood when the version took effect (its figures as of then)."""
    return {
        **stored.snapshot,
        "version": stored.version,
        "change_order_id": stored.change_order_id,
        "version_created_at": iso(stored.created_at),
    }


def watch_status_view(status: WatchStatus) -> dict[str, Any]:
    return asdict(status)


def run_row_details(session: Session, run: Run) -> dict[str, Any]:
    """The kind-specific ``details`` of a run's status, from the database."""
    if run.kind == "change_order":
        order = session.scalar(select(ChangeOrder).where(ChangeOrder.run_id == run.id))
        if order is not None:
            return {"change_order_id": order.id, "status": order.status, "version": order.version}
    return {}
