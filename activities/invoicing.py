"""Posting a milestone's lines on the customer's open draft invoice, with retention and evidence."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.audit import run_audit
from db.audit import evidence_refs
from db.models import Decision, Invoice, InvoiceLine, Milestone, RetentionEntry, Run, new_id
from domain.billing import Charge, cumulative_charge
from domain.bounds import fits_invoice
from domain.lifecycle import MilestoneStatus, status_after_billing, transition
from domain.money import format_minor, parse_percent
from domain.success_fee import SuccessFee, parse_success_fee_terms, success_fee
from workflows.contracts import Amounts, RunInput


@dataclass(frozen=True)
class Posted:
    invoice_id: str
    amounts: Amounts


def open_draft(
    session: Session, customer_id: str, currency: str, adding_minor: int = 0, key: str = ""
) -> Invoice:
    """The customer's one open draft in this currency (or under ``key``, e.g. a payer's draft
    of encounter lines), created on first use.

    The draft row stays locked until the caller commits, as finalization locks it too: a line
    never lands on an invoice being finalized (after it is, the draft key is gone and a new
    draft opens). A draft that cannot take `adding_minor` more without passing
    MAX_INVOICE_MINOR gives up its key (it stays a draft, finalized as usual) and a fresh one
    opens, so billing never overflows an invoice total.
    """
    key = key or f"{customer_id}:{currency}"
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


def run_charge(run: RunInput, milestone: Milestone) -> Charge:
    """What accepting the run bills: the rest of the milestone's fee up to the run's percent, or,
    for a filing of a repeatable milestone, one whole fee of its own (retention on each)."""
    computed = success_fee_of(run)
    earlier = (0, 0) if run.repeatable else (milestone.billed_minor, milestone.retention_held_minor)
    return cumulative_charge(
        computed.amount_minor if computed else run.fee_minor,
        parse_percent(run.completion_percent),
        *earlier,
        parse_percent(run.retention_percent),
    )


def _line_terms(
    run: RunInput, percent: Decimal, computed: SuccessFee | None
) -> tuple[str, dict[str, Any]]:
    """The gross line's description and details: how its amount came about, and the filing."""
    if run.period is not None:
        what = f"SLA period {run.period}"
    else:
        what = "filing" if run.repeatable else f"{percent}% complete"
    if run.confirmation_id is not None:
        what += f", confirmation {run.confirmation_id}"
    description = f"{run.milestone_name} ({run.milestone_key}, {what})"
    details = computed.as_dict() if computed else {}
    if computed:
        description += f": {computed.explain(run.currency)}"
    if run.confirmation_id is not None:
        details["confirmation_id"] = run.confirmation_id
    if run.period is not None:
        details["period"] = run.period
        details["fee_minor"] = run.fee_minor
    elif run.repeatable:
        details["unit_fee_minor"] = run.fee_minor
    return description, details


def _accept(milestone: Milestone, run: RunInput, percent: Decimal) -> None:
    """The milestone after billing; a repeatable one is accepted by its first filing (it was
    never claimed, so it passes through review here) and stays accepted, taking more."""
    if not run.repeatable:
        milestone.status = transition(milestone.status, status_after_billing(percent))
    elif milestone.status != MilestoneStatus.ACCEPTED:
        reviewed = transition(milestone.status, MilestoneStatus.IN_REVIEW)
        milestone.status = transition(reviewed, MilestoneStatus.ACCEPTED)


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
    if not run.repeatable and Decimal(milestone.accepted_percent) >= percent:
        return None
    computed = success_fee_of(run)
    charge = run_charge(run, milestone)
    description, details = _line_terms(run, percent, computed)
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
        description=description,
        milestone_id=run.milestone_id,
        run_id=run.run_id,
        evidence=evidence,
        details=details or None,
    )
    lines = [gross_line]
    if charge.retention_minor:
        lines.append(
            InvoiceLine(
                id=new_id("lin"),
                invoice_id=invoice.id,
                kind="retention_withheld",
                amount_minor=-charge.retention_minor,
                description=f"Retention withheld ({run.retention_percent}%) on {run.milestone_key}"
                + (f", confirmation {run.confirmation_id}" if run.confirmation_id else "")
                + (f", SLA period {run.period}" if run.period else ""),
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
    _accept(milestone, run, percent)
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
            **({"confirmation_id": run.confirmation_id} if run.confirmation_id else {}),
            **({"repeatable": True} if run.repeatable else {}),
            **({"period": run.period} if run.period else {}),
        },
        dedupe_key=f"{run.run_id}:milestone_accepted",
    )
    return Posted(invoice.id, Amounts(charge.gross_minor, charge.retention_minor, charge.net_minor))
