"""Payers and their fee schedules: created once, versioned by effective date, never edited.

Both writes are idempotent the way external systems retry: the same body again gets the same
answer (200), a different body under the same id (or effective date) is a 409.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.encounters import FeeSchedule, Payer
from db.models import Customer, new_id
from domain.encounter_pricing import (
    MAX_FEE_ENTRIES,
    MAX_UNITS,
    MODIFIER_CODE,
    PROCEDURE_CODE,
    FeeEntry,
    parse_modifier_percent,
)
from services.errors import Problem, not_found
from services.fields import Currency, MinorAmount, Name, Span, Strict, checked_by
from services.runs import canonical_hash

PayerId = Annotated[
    str, Field(strict=True, min_length=1, max_length=24, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
ProcedureCode = Annotated[
    str,
    Field(
        strict=True,
        pattern=PROCEDURE_CODE.pattern,
        description="A CPT/HCPCS-shaped code: five upper-case letters or digits.",
    ),
]
ModifierCode = Annotated[str, Field(strict=True, pattern=MODIFIER_CODE.pattern)]
ModifierPercent = Annotated[
    str, Field(strict=True, max_length=9), checked_by(parse_modifier_percent, "percent")
]


class PayerIn(Strict):
    id: PayerId
    name: Name
    currency: Currency
    payment_terms: Span = Field(
        description='{"business_days": N} or {"duration": "P30D"}: issue date to due date.'
    )

    @field_validator("payment_terms")
    @classmethod
    def _required(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        if value is None:
            raise PydanticCustomError("duration", "payment_terms is required")
        return value


class FeeEntryIn(Strict):
    procedure_code: ProcedureCode
    amount_minor: MinorAmount = Field(description="Per unit, in the payer's currency.")
    units: StrictBool | Annotated[StrictInt, Field(ge=1, le=MAX_UNITS)] = Field(
        default=False,
        description="false: one per encounter; true: per unit; N: per unit, at most N.",
    )
    modifiers: Annotated[dict[ModifierCode, ModifierPercent], Field(max_length=50)] = {}


class FeeScheduleIn(Strict):
    effective_from: date
    entries: list[FeeEntryIn] = Field(min_length=1, max_length=MAX_FEE_ENTRIES)

    @model_validator(mode="after")
    def _one_entry_per_code(self) -> "FeeScheduleIn":
        seen: set[str] = set()
        for entry in self.entries:
            if entry.procedure_code in seen:
                raise PydanticCustomError(
                    "entries", f"procedure code {entry.procedure_code} is listed twice"
                )
            seen.add(entry.procedure_code)
        return self


@dataclass(frozen=True)
class Written:
    row: Any
    created: bool  # False: the same body was sent before; this is its answer again


def create_payer(session: Session, body: PayerIn) -> Written:
    body_hash = canonical_hash(body.model_dump(mode="json"))
    existing = session.get(Payer, body.id)
    if existing is None:
        payer = Payer(
            id=body.id,
            name=body.name,
            currency=body.currency,
            payment_terms=body.payment_terms,
            body_hash=body_hash,
        )
        session.add(payer)
        try:
            session.commit()
            return Written(payer, True)
        except IntegrityError:  # a concurrent twin created it first
            session.rollback()
            existing = session.get_one(Payer, body.id)
    if existing.body_hash != body_hash:
        raise Problem(
            409,
            "payer-conflict",
            "Payer exists",
            f"Payer {body.id!r} exists with different details; payers are never edited.",
        )
    return Written(existing, False)


def put_fee_schedule(session: Session, payer_id: str, body: FeeScheduleIn, actor: str) -> Written:
    """A new version effective from ``body.effective_from``; the same version again is a no-op."""
    payer = get_payer(session, payer_id)
    entries = {
        e.procedure_code: {
            "amount_minor": e.amount_minor,
            "units": e.units,
            "modifiers": e.modifiers,
        }
        for e in body.entries
    }
    body_hash = canonical_hash({"effective_from": body.effective_from.isoformat(), **entries})
    query = select(FeeSchedule).where(
        FeeSchedule.payer_id == payer.id, FeeSchedule.effective_from == body.effective_from
    )
    existing = session.scalar(query)
    if existing is None:
        schedule = FeeSchedule(
            id=new_id("fsv"),
            payer_id=payer.id,
            effective_from=body.effective_from,
            entries=entries,
            body_hash=body_hash,
            created_by=actor,
        )
        session.add(schedule)
        try:
            session.commit()
            return Written(schedule, True)
        except IntegrityError:
            session.rollback()
            existing = session.scalars(query).one()
    if existing.body_hash != body_hash:
        raise Problem(
            409,
            "fee-schedule-conflict",
            "Fee schedule version exists",
            f"Payer {payer.id!r} already has a different fee schedule effective from "
            f"{body.effective_from}; versions are never edited: PUT one with a new date.",
        )
    return Written(existing, False)


def get_payer(session: Session, payer_id: str) -> Payer:
    payer = session.get(Payer, payer_id)
    if payer is None:
        raise not_found("Payer", payer_id)
    return payer


def schedule_versions(session: Session, payer_id: str) -> list[FeeSchedule]:
    """The payer's versions, oldest effective date first."""
    return list(
        session.scalars(
            select(FeeSchedule)
            .where(FeeSchedule.payer_id == payer_id)
            .order_by(FeeSchedule.effective_from)
        )
    )


def fee_entry(stored: dict[str, Any]) -> FeeEntry:
    """A stored entry as the pricing rule takes it."""
    return FeeEntry(
        stored["amount_minor"],
        stored["units"],
        {code: Decimal(p) for code, p in stored["modifiers"].items()},
    )


def payer_of(session: Session, customer: Customer) -> Payer | None:
    """The payer the customer names in ``metadata.payer_id``, if it names one that exists."""
    payer_id = (customer.metadata_ or {}).get("payer_id")
    return session.get(Payer, payer_id) if isinstance(payer_id, str) and payer_id else None


def payer_view(payer: Payer, versions: list[FeeSchedule]) -> dict[str, Any]:
    return {
        "id": payer.id,
        "name": payer.name,
        "currency": payer.currency,
        "payment_terms": payer.payment_terms,
        "fee_schedules": [schedule_summary(v) for v in versions],
    }


def schedule_summary(schedule: FeeSchedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "effective_from": schedule.effective_from.isoformat(),
        "procedure_codes": len(schedule.entries),
    }


def schedule_view(schedule: FeeSchedule) -> dict[str, Any]:
    return {
        **schedule_summary(schedule),
        "payer_id": schedule.payer_id,
        "entries": [{"procedure_code": code, **e} for code, e in sorted(schedule.entries.items())],
    }
