"""Posting a milestone's lines on the customer's open draft invoice, with retention and evidence."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.audit import run_audit
from db.audit import evidence_refs
from db.models import Decision, Invoice, InvoiceLine, Milestone, RetentionEntry, Run, new_id
from domain.billing import cumulative_charge
from domain.bounds import fits_invoice
from domain.lifecycle import status_after_billing, transition
from domain.money import format_minor, parse_percent
from domain.success_fee import SuccessFee, parse_success_fee_terms, success_fee
from workflows.contracts import Amounts, RunInput


@dataclass(frozen=True)
class Posted:
    invoice_id: str
    amounts: Amounts


def open_draft(session: Session, customer_id: str, currency: str, adding_minor: int = 0) -> Invoice:
    """The customer's one open draft in this currency, created on first use.

    The draft row stays locked until the caller commits, as finalization locks it too: a line
    never lands on an invoice being finalized (after it is, the draft key is gone and a new
    draft opens). A draft that cannot take `adding_minor` more without passing
    MAX_INVOICE_MINOR gives up its key (it stays a draft, finalized as usual) and a fresh one
    opens, so billing never overflows an invoice total.
    """
    key = f"{customer_id}:{currency}"
    query = (
        select(Invoice)
        .where(Invoice.draft_key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    draft = session.scalars(query).first()
    if draft is not None and fits_invoice(draft.total_minor, adding_minor):
        return draft
    if draft is not None:
        draft.draft_key = None
        session.flush()
    try:
        with session.begin_nested():
            draft = Invoice(
                id=new_id("inv"), customer_id=customer_id, currency=currency, draft_key=key
            )
            session.add(draft)
        return draft
    except IntegrityError:  # another run created it first
        return session.scalars(query).one()


def success_fee_of(run: RunInput) -> SuccessFee | None:
    """The success fee a run bills, from its frozen terms and its trigger's measurement; the same
    computation when the run opens and when it bills. None for other kinds of milestone."""
    if run.success_fee is None:
        return None
    terms = parse_success_fee_terms(run.success_fee, run.currency)
    return success_fee(terms, run.kpis[terms.metric], run.currency)


def post_milestone_lines(session: Session, run: RunInput, at: datetime) -> Posted | None:
    """Post gross and withheld retention for the run, once. None if nothing is left to bill.

    The milestone row is locked before looking for the run's lines: an overlapping attempt of
    the same activity waits for the first, then finds its lines and returns the same result.
    """
    milestone = session.scalars(
        select(Milestone)
        .where(Milestone.id == run.milestone_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    existing = session.scalar(
        select(InvoiceLine).where(InvoiceLine.run_id == run.run_id, InvoiceLine.kind == "milestone")
    )
    db_run = session.get_one(Run, run.run_id, populate_existing=True)
    if existing is not None:
        assert db_run.gross_minor is not None and db_run.retention_minor is not None
        return Posted(
            existing.invoice_id,
            Amounts(
                db_run.gross_minor,
                db_run.retention_minor,
                db_run.gross_minor - db_run.retention_minor,
            ),
        )
    percent = parse_percent(run.completion_percent)
    if Decimal(milestone.accepted_percent) >= percent:
        return None
    computed = success_fee_of(run)
    charge = cumulative_charge(
        computed.amount_minor if computed else run.fee_minor,
        percent,
        milestone.billed_minor,
        milestone.retention_held_minor,
        parse_percent(run.retention_percent),
    )
    invoice = open_draft(session, run.customer_id, run.currency, charge.net_minor)
    decision_evidence = session.scalars(
        select(Decision.evidence_ids).where(Decision.run_id == run.run_id).order_by(Decision.id)
    ).all()
    evidence_ids = list(
        dict.fromkeys([*run.evidence_ids, *(e for ids in decision_evidence for e in ids)])
    )
    evidence = evidence_refs(session, evidence_ids)
    gross_line = InvoiceLine(
        id=new_id("lin"),
        invoice_id=invoice.id,
        kind="milestone",
        amount_minor=charge.gross_minor,
        description=f"{run.milestone_name} ({run.milestone_key}, {percent}% complete)"
        + (f": {computed.explain(run.currency)}" if computed else ""),
        milestone_id=run.milestone_id,
        run_id=run.run_id,
        evidence=evidence,
        details=computed.as_dict() if computed else None,
    )
    lines = [gross_line]
    if charge.retention_minor:
        lines.append(
            InvoiceLine(
                id=new_id("lin"),
                invoice_id=invoice.id,
                kind="retention_withheld",
                amount_minor=-charge.retention_minor,
                description=f"Retention withheld ({run.retention_percent}%) on {run.milestone_key}",
                milestone_id=run.milestone_id,
                run_id=run.run_id,
                evidence=evidence,
            )
        )
        session.add(
            RetentionEntry(
                engagement_id=run.engagement_id,
                milestone_id=run.milestone_id,
                run_id=run.run_id,
                kind="held",
                amount_minor=charge.retention_minor,
                at=at,
            )
        )
    session.add_all(lines)
    invoice.total_minor += sum(line.amount_minor for line in lines)

    if computed is not None:  # the fee is known only now: the milestone shows what it billed
        milestone.fee_minor = computed.amount_minor
    milestone.billed_minor += charge.gross_minor
    milestone.retention_held_minor += charge.retention_minor
    milestone.accepted_percent = str(percent)
    milestone.accepted_kpis = dict(run.kpis)
    milestone.status = transition(milestone.status, status_after_billing(percent))
    if milestone.open_run_id == run.run_id:
        milestone.open_run_id = None
    db_run.stage, db_run.outcome, db_run.closed_at = "billed", "billed", at
    db_run.gross_minor, db_run.retention_minor = charge.gross_minor, charge.retention_minor
    db_run.net_minor, db_run.invoice_id = charge.net_minor, invoice.id
    session.flush()

    for line in lines:
        run_audit(
            session,
            run,
            at=at,
            kind="invoice_line_posted",
            evidence=evidence,
            data={
                "invoice_id": invoice.id,
                "line_id": line.id,
                "line_kind": line.kind,
                "amount_minor": line.amount_minor,
                "currency": run.currency,
                "amount": format_minor(line.amount_minor, run.currency),
                **({"details": line.details} if line.details else {}),
            },
            dedupe_key=f"{run.run_id}:line:{line.kind}",
        )
    if charge.retention_minor:
        run_audit(
            session,
            run,
            at=at,
            kind="retention_held",
            data={
                "amount_minor": charge.retention_minor,
                "percent": run.retention_percent,
                "currency": run.currency,
            },
            dedupe_key=f"{run.run_id}:retention_held",
        )
    run_audit(
        session,
        run,
        at=at,
        kind="milestone_accepted",
        data={
            "completion_percent": str(percent),
            "gross_minor": charge.gross_minor,
            "retention_minor": charge.retention_minor,
            "net_minor": charge.net_minor,
            "kpis": dict(run.kpis),
        },
        dedupe_key=f"{run.run_id}:milestone_accepted",
    )
    return Posted(invoice.id, Amounts(charge.gross_minor, charge.retention_minor, charge.net_minor))
