"""Per-encounter billing: payers, their effective-dated fee schedules, and priced encounters."""

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from db.models import Base
from db.types import utcnow


class EncounterStatus(StrEnum):
    PRICED = "priced"  # accepted and priced at the door; its batch's workflow bills it
    BILLED = "billed"  # its invoice line is posted
    # The engagement's approval says "encounters": "sign_off": its batch awaits the dual sign-off
    # (run ``encounters:<engagement>:<batch>:sign-off``); approved → priced, then billed.
    PENDING_SIGN_OFF = "pending_sign_off"
    # The sign-off ended without approval: never billed (post again under new encounter ids).
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


# The end of an encounter sign-off without approval → what its encounters become.
NOT_SIGNED = {
    "rejected": EncounterStatus.REJECTED,
    "expired": EncounterStatus.EXPIRED,
    "cancelled": EncounterStatus.CANCELLED,
    "failed": EncounterStatus.FAILED,
}


class Payer(Base):
    """Who reimburses encounters; a customer names its payer in ``metadata.payer_id``."""

    __tablename__ = "payers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    # A span ({"business_days": 10} or {"duration": "P30D"}): its invoices' issue → due date.
    payment_terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeeSchedule(Base):
    """One version of a payer's fee schedule, in effect from ``effective_from`` until the next
    version's; never edited. ``entries``: procedure code → {amount_minor, units, modifiers}."""

    __tablename__ = "fee_schedules"
    __table_args__ = (UniqueConstraint("payer_id", "effective_from"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payer_id: Mapped[str] = mapped_column(ForeignKey("payers.id"), index=True)
    effective_from: Mapped[date] = mapped_column()
    entries: Mapped[dict[str, Any]] = mapped_column()
    body_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EncounterBatch(Base):
    """One upload: its accepted encounters are billed by the workflow ``workflow_id``."""

    __tablename__ = "encounter_batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    payer_id: Mapped[str] = mapped_column(ForeignKey("payers.id"))
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    accepted: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Encounter(Base):
    """One billable occurrence, priced once from the schedule in effect on its service date.

    Its invoice line's ``run_id`` is this row's ``id`` (unique with the line's kind), so the
    line is posted once however often billing is retried. ``patient_ref`` is opaque: kept for
    the submitter's reconciliation, never put on an invoice, a notice or an audit event.
    """

    __tablename__ = "encounters"
    __table_args__ = (UniqueConstraint("engagement_id", "encounter_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("encounter_batches.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    encounter_id: Mapped[str] = mapped_column(String(64))
    procedure_code: Mapped[str] = mapped_column(String(5))
    modifiers: Mapped[list[Any]] = mapped_column()
    units: Mapped[int] = mapped_column(Integer)
    service_date: Mapped[date] = mapped_column()
    patient_ref: Mapped[str | None] = mapped_column(String(128))
    payer_id: Mapped[str] = mapped_column(ForeignKey("payers.id"))
    fee_schedule_id: Mapped[str] = mapped_column(ForeignKey("fee_schedules.id"))
    unit_amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # (code, percent) pairs as applied, for the line's details.
    applied_modifiers: Mapped[list[Any]] = mapped_column()
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=EncounterStatus.PRICED, index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    line_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    billed_at: Mapped[datetime | None] = mapped_column()


def encounter_engagements(session: Session, line_run_ids: Iterable[str]) -> dict[str, str]:
    """Encounter line ``run_id`` (the encounter's id) → the engagement it bills."""
    ids = [i for i in set(line_run_ids) if i.startswith("enc_")]
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Encounter.id, Encounter.engagement_id).where(
                Encounter.id.in_(ids[start : start + 500])
            )
        )
        found.update({row.id: row.engagement_id for row in rows})
    return found
