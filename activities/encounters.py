"""Posting encounter lines, and the due date a payer's terms give its invoices.

Encounter lines go on a draft of their own per customer, currency and payer (draft key
``<customer>:<currency>:payer:<payer>``), never on the milestone draft: an invoice has one due
date, and a payer's terms (say net 45 business days) are not the engagement's. When such a draft
is finalized its due date comes from the payer's terms (``payer_due_on``).
"""

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.approval import at_, calendar_of
from activities.audit import SYSTEM_ACTOR
from activities.invoicing import open_draft
from db.audit import append_event
from db.encounters import Encounter, EncounterBatch, EncounterStatus, FeeSchedule, Payer
from db.models import Engagement, Invoice, InvoiceLine, new_id
from domain.bounds import fits_invoice
from domain.calendar import parse_span
from domain.documents import due_date
from services.encounters import ids_digest
from workflows.encounters import BillChunkRequest, BilledChunk

LINE_KIND = "encounter"


def payer_draft_key(customer_id: str, currency: str, payer_id: str) -> str:
    return f"{customer_id}:{currency}:payer:{payer_id}"


def line_details(encounter: Encounter, effective_from: date) -> dict:
    """How the line's amount was computed; never the patient reference."""
    return {
        "encounter_id": encounter.encounter_id,
        "procedure_code": encounter.procedure_code,
        "service_date": encounter.service_date.isoformat(),
        "unit_amount_minor": encounter.unit_amount_minor,
        "units": encounter.units,
        "modifiers": [{"code": c, "percent": p} for c, p in encounter.applied_modifiers],
        "payer_id": encounter.payer_id,
        "fee_schedule_effective_from": effective_from.isoformat(),
    }


def bill_chunk(session: Session, req: BillChunkRequest) -> BilledChunk:
    """Post the lines of the batch's ``req.chunk``-th run of encounters (in row order) that are
    not billed yet; a repeat posts nothing and answers the same.

    The batch row is locked first, so an overlapping attempt waits and then finds those
    encounters billed; the lines' unique (run_id, kind) is the last guard.
    """
    batch = session.scalars(
        select(EncounterBatch).where(EncounterBatch.id == req.batch_id).with_for_update()
    ).one()
    engagement = session.get_one(Engagement, batch.engagement_id)
    chunk = session.scalars(
        select(Encounter)
        .where(Encounter.batch_id == batch.id)
        .order_by(Encounter.row)
        .offset(req.chunk * req.limit)
        .limit(req.limit)
    ).all()
    remaining = max(batch.accepted - (req.chunk + 1) * req.limit, 0)
    answer = BilledChunk(len(chunk), sum(e.amount_minor for e in chunk), remaining)
    unbilled = [e for e in chunk if e.status == EncounterStatus.PRICED]
    if not unbilled:
        return answer
    at = at_(req.at)
    schedules = _effective_dates(session, {e.fee_schedule_id for e in unbilled})
    key = payer_draft_key(engagement.customer_id, engagement.currency, batch.payer_id)
    draft = open_draft(session, engagement.customer_id, engagement.currency, key=key)
    invoices: dict[str, int] = {}
    for encounter in unbilled:
        if not fits_invoice(draft.total_minor, encounter.amount_minor):
            draft = open_draft(
                session,
                engagement.customer_id,
                engagement.currency,
                encounter.amount_minor,
                key=key,
            )
        line = InvoiceLine(
            id=new_id("lin"),
            invoice_id=draft.id,
            kind=LINE_KIND,
            description=f"{encounter.procedure_code} on {encounter.service_date.isoformat()}",
            amount_minor=encounter.amount_minor,
            run_id=encounter.id,
            evidence=[],
            details=line_details(encounter, schedules[encounter.fee_schedule_id]),
        )
        session.add(line)
        draft.total_minor += encounter.amount_minor
        invoices[draft.id] = invoices.get(draft.id, 0) + 1
        encounter.status, encounter.billed_at = EncounterStatus.BILLED, at
        encounter.invoice_id, encounter.line_id = draft.id, line.id
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=SYSTEM_ACTOR,
        kind="encounters_billed",
        at=at,
        run_id=batch.workflow_id,
        data={
            "batch_id": batch.id,
            "chunk": req.chunk,
            "lines": len(unbilled),
            "amount_minor": sum(e.amount_minor for e in unbilled),
            "currency": engagement.currency,
            "invoices": invoices,
            "encounter_ids_sha256": ids_digest(e.encounter_id for e in unbilled),
        },
        dedupe_key=f"{batch.id}:billed:{req.chunk}",
    )
    return answer


def _effective_dates(session: Session, schedule_ids: set[str]) -> dict[str, date]:
    rows = session.execute(
        select(FeeSchedule.id, FeeSchedule.effective_from).where(FeeSchedule.id.in_(schedule_ids))
    )
    return {row.id: row.effective_from for row in rows}


def payer_due_on(session: Session, invoice: Invoice, issued_at: datetime) -> date | None:
    """The due date of an invoice of encounter lines under its payer's terms, read on the
    engagements' calendars (the earliest, if it bills several); None for any other invoice."""
    pairs = session.execute(
        select(Encounter.payer_id, Encounter.engagement_id)
        .where(Encounter.invoice_id == invoice.id)
        .distinct()
    ).all()
    due_dates = []
    for payer_id, engagement_id in pairs:
        terms = parse_span(session.get_one(Payer, payer_id).payment_terms)
        assert terms is not None
        calendar = session.get_one(Engagement, engagement_id).approval.get("calendar") or {}
        due_dates.append(due_date(issued_at, terms, calendar_of(calendar)))
    return min(due_dates, default=None)


class EncounterActivities:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    @activity.defn(name="bill_encounter_chunk")
    def bill_encounter_chunk(self, req: BillChunkRequest) -> BilledChunk:
        with self._sessions.begin() as session:
            return bill_chunk(session, req)

    def all(self) -> list:
        return [self.bill_encounter_chunk]
