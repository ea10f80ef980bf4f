"""The encounters door: the rows of an upload (``services/encounter_uploads.py`` reads them), each
checked and priced from the payer's fee schedule in effect on its service date, and the accepted
ones recorded in one transaction.

Every check happens here, so nothing accepted can fail when its batch is billed
(``activities/encounters.py``); a refused row changes nothing and the other rows are unaffected.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.audit import append_event
from db.encounters import (
    NOT_SIGNED,
    Encounter,
    EncounterBatch,
    EncounterStatus,
    FeeSchedule,
    Payer,
)
from db.models import Customer, Engagement, new_id
from domain.encounter_pricing import MAX_MODIFIERS, MAX_UNITS, NotPriceable, in_effect, price
from services.access import load_engagement
from services.callers import Caller
from services.encounter_sign_offs import needs_sign_off, request_sign_off
from services.encounter_uploads import Raw, RowResult, refused
from services.errors import Problem
from services.fields import Strict
from services.payers import ModifierCode, ProcedureCode, fee_entry, payer_of, schedule_versions
from services.runs import canonical_hash

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise PydanticCustomError("date", "a date is a string like '2026-11-02'")
    return value


class EncounterIn(Strict):
    encounter_id: Annotated[
        str,
        Field(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
    ]
    procedure_code: ProcedureCode
    modifiers: Annotated[list[ModifierCode], Field(max_length=MAX_MODIFIERS)] = []
    units: Annotated[StrictInt, Field(ge=1, le=MAX_UNITS)] = 1
    service_date: Annotated[date, BeforeValidator(_iso_date)]
    patient_ref: Annotated[str, Field(strict=True, min_length=1, max_length=128)] | None = None


@dataclass
class Upload:
    batch: EncounterBatch | None  # None when no row was accepted
    results: list[RowResult]


@dataclass
class _Door:
    """What every row of one upload is checked against."""

    engagement: Engagement
    payer: Payer | None
    versions: list[FeeSchedule]  # oldest effective date first
    dates: list[date]  # their effective dates
    # encounter_id → (batch id, body hash, status), already recorded
    known: dict[str, tuple[str, str, str]]
    latest_service_date: date


def record_upload(
    session: Session, caller: Caller, engagement_id: str, rows: list[Raw], today: date
) -> Upload:
    """Check and price every row; record the accepted ones and their batch in one transaction.

    Encounters are posted by the admin or the engagement's integration token. A concurrent
    upload of the same encounter ids makes the commit fail on the unique key: the rows are then
    checked again, and those ids answered as duplicates.
    """
    for attempt in (1, 2):
        try:
            return _record(session, caller, engagement_id, rows, today)
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record(
    session: Session, caller: Caller, engagement_id: str, rows: list[Raw], today: date
) -> Upload:
    engagement = check_uploader(session, caller, engagement_id)
    payer = payer_of(session, session.get_one(Customer, engagement.customer_id))
    versions = schedule_versions(session, payer.id) if payer is not None else []
    door = _Door(
        engagement,
        payer,
        versions,
        [v.effective_from for v in versions],
        _known(session, engagement.id, rows),
        today + timedelta(days=1),  # a day's grace for time zones ahead of UTC
    )
    batch_id = new_id("encb")
    signed = needs_sign_off(engagement)
    status = EncounterStatus.PENDING_SIGN_OFF if signed else EncounterStatus.PRICED
    results, accepted, seen = [], [], set()
    for number, raw in enumerate(rows, start=1):
        result, encounter = _check(door, number, raw, seen)
        results.append(result)
        if encounter is not None:
            seen.add(encounter["encounter_id"])
            accepted.append({**encounter, "batch_id": batch_id, "status": status})
    if not accepted:
        session.rollback()
        return Upload(None, results)
    assert payer is not None
    batch = EncounterBatch(
        id=batch_id,
        engagement_id=engagement.id,
        payer_id=payer.id,
        workflow_id=f"encounters:{engagement.id}:{batch_id}",
        accepted=len(accepted),
        refused=len(results) - len(accepted),
        total_minor=sum(e["amount_minor"] for e in accepted),
        created_by=caller.actor,
    )
    session.add(batch)
    session.flush()
    session.execute(insert(Encounter), accepted)
    digest = ids_digest(e["encounter_id"] for e in accepted)
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="encounters_accepted",
        data={
            "batch_id": batch.id,
            "payer_id": payer.id,
            "accepted": batch.accepted,
            "refused": batch.refused,
            "total_minor": batch.total_minor,
            "currency": engagement.currency,
            "encounter_ids_sha256": digest,
        },
    )
    if signed:
        request_sign_off(session, engagement, batch, digest)
    session.commit()
    return Upload(batch, results)


def check_uploader(session: Session, caller: Caller, engagement_id: str) -> Engagement:
    """The engagement, if the caller may post its encounters: the admin or its integration token."""
    engagement = load_engagement(session, engagement_id, caller)
    if caller.kind == "principal":
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            "Encounters are posted with the admin token or the engagement's integration token.",
        )
    return engagement


def ids_digest(encounter_ids: Iterable[str]) -> str:
    """sha256 of the sorted ids, one per line: names a set of encounters in the audit."""
    return hashlib.sha256("\n".join(sorted(encounter_ids)).encode()).hexdigest()


def _known(
    session: Session, engagement_id: str, rows: list[Raw]
) -> dict[str, tuple[str, str, str]]:
    ids = list({r["encounter_id"] for r in rows if isinstance(r, dict) and _is_id(r)})
    known: dict[str, tuple[str, str, str]] = {}
    for start in range(0, len(ids), 500):
        found = session.execute(
            select(
                Encounter.encounter_id, Encounter.batch_id, Encounter.body_hash, Encounter.status
            ).where(
                Encounter.engagement_id == engagement_id,
                Encounter.encounter_id.in_(ids[start : start + 500]),
            )
        )
        known.update({r.encounter_id: (r.batch_id, r.body_hash, r.status) for r in found})
    return known


def _is_id(row: dict[str, Any]) -> bool:
    value = row.get("encounter_id")
    return isinstance(value, str) and 0 < len(value) <= 64


def _check(
    door: _Door, number: int, raw: Raw, seen: set[str]
) -> tuple[RowResult, dict[str, Any] | None]:
    """The row's answer, and the encounter to record when it is accepted."""
    if isinstance(raw, RowResult):
        return raw, None
    encounter_id = raw.get("encounter_id") if _is_id(raw) else None
    try:
        row = EncounterIn.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "row", "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return refused(number, encounter_id, 422, "validation-error", detail, errors=errors), None
    body_hash = canonical_hash(row.model_dump(mode="json"))
    if row.encounter_id in seen:
        detail = f"encounter {row.encounter_id!r} appears earlier in this upload"
        return refused(number, row.encounter_id, 409, "duplicate-encounter", detail), None
    if row.encounter_id in door.known:
        batch_id, known_hash, status = door.known[row.encounter_id]
        same = "the same" if known_hash == body_hash else "different"
        detail = (
            f"encounter {row.encounter_id!r} was already accepted "
            f"(batch {batch_id}, {same} content)"
        )
        if status in NOT_SIGNED.values():
            detail += f" and {status} at sign-off; post it again under a new encounter_id"
        return refused(number, row.encounter_id, 409, "duplicate-encounter", detail), None
    problem = _unpriceable(door, row)
    if problem is not None:
        slug, detail = problem
        return refused(number, row.encounter_id, 422, slug, detail), None
    assert door.payer is not None
    index = in_effect(door.dates, row.service_date)
    assert index is not None
    schedule = door.versions[index]
    try:
        priced = price(fee_entry(schedule.entries[row.procedure_code]), row.units, row.modifiers)
    except NotPriceable as exc:
        return refused(number, row.encounter_id, 422, exc.slug, str(exc)), None
    encounter = {
        "id": new_id("enc"),
        "engagement_id": door.engagement.id,
        "row": number,
        "encounter_id": row.encounter_id,
        "procedure_code": row.procedure_code,
        "modifiers": list(row.modifiers),
        "units": row.units,
        "service_date": row.service_date,
        "patient_ref": row.patient_ref,
        "payer_id": door.payer.id,
        "fee_schedule_id": schedule.id,
        "unit_amount_minor": priced.unit_amount_minor,
        "amount_minor": priced.amount_minor,
        "applied_modifiers": [list(m) for m in priced.modifiers],
        "body_hash": body_hash,
    }
    return RowResult(number, row.encounter_id, 201, priced.amount_minor), encounter


def _unpriceable(door: _Door, row: EncounterIn) -> tuple[str, str] | None:
    """Why the payer's schedules cannot price this row at all, or None."""
    if door.payer is None:
        return "no-payer", (
            "the engagement's customer names no known payer in metadata.payer_id; "
            "create the payer (POST /v1/payers) and name it on the customer"
        )
    if door.payer.currency != door.engagement.currency:
        return "payer-currency-mismatch", (
            f"payer {door.payer.id!r} pays in {door.payer.currency}, "
            f"the engagement bills in {door.engagement.currency}"
        )
    if row.service_date > door.latest_service_date:
        return "service-date-in-future", f"service date {row.service_date} is in the future"
    index = in_effect(door.dates, row.service_date)
    if index is None:
        first = door.versions[0].effective_from.isoformat() if door.versions else None
        since = f"its first is effective from {first}" if first else "it has none"
        return "no-schedule-in-effect", (
            f"payer {door.payer.id!r} has no fee schedule in effect on {row.service_date} ({since})"
        )
    schedule = door.versions[index]
    if row.procedure_code not in schedule.entries:
        return "unknown-procedure-code", (
            f"procedure code {row.procedure_code} is not in payer {door.payer.id!r}'s fee "
            f"schedule effective from {schedule.effective_from}"
        )
    return None
