"""Setup for encounter tests below the HTTP layer: a payer with a fee schedule, a customer that
names it, an engagement, and a batch of priced encounters, through the functions routes call."""

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.example import platform_migration
from api.routes.customers import create_customer
from api.routes.engagements import create_engagement
from api.schemas import CustomerIn, EngagementIn
from services.callers import Caller
from services.encounters import record_upload
from services.payers import FeeScheduleIn, PayerIn, create_payer, put_fee_schedule

ADMIN = Caller("admin", "admin")
TODAY = date(2026, 11, 22)
CODE = "97110"


def encounter_engagement(
    sessions: sessionmaker[Session],
    people: dict[str, str],
    amount_minor: int,
    encounters: str = "bill",
) -> dict[str, Any]:
    """An engagement whose customer names a new payer with one per-unit code at that amount;
    ``encounters="sign_off"`` sends each batch through the engagement's sign-off first."""
    payer_id = f"p-{uuid.uuid4().hex[:10]}"
    with sessions() as session:
        terms = {"duration": "P30D"}
        create_payer(
            session, PayerIn(id=payer_id, name="Aetna", currency="USD", payment_terms=terms)
        )
        entry = {"procedure_code": CODE, "amount_minor": amount_minor, "units": True}
        schedule = {"effective_from": "2026-01-01", "entries": [entry]}
        put_fee_schedule(session, payer_id, FeeScheduleIn.model_validate(schedule), "admin")
        customer = create_customer(
            CustomerIn(name="Clinic", currency="USD", metadata={"payer_id": payer_id}),
            session,
            ADMIN,
        )
        body = platform_migration(
            customer["id"],
            people["lead"],
            people["client"],
            people["lead_backup"],
            people["client_backup"],
        )
        body["approval"]["encounters"] = encounters
        return create_engagement(EngagementIn.model_validate(body), session, ADMIN)


def priced_batch(sessions: sessionmaker[Session], engagement_id: str, n: int) -> str:
    """``n`` accepted encounters of one unit each: the batch's id."""
    rows: list[Any] = [
        {"encounter_id": f"W-{i}", "procedure_code": CODE, "service_date": "2026-05-04"}
        for i in range(n)
    ]
    with sessions() as session:
        batch = record_upload(session, ADMIN, engagement_id, rows, TODAY).batch
    assert batch is not None and batch.accepted == n
    return batch.id
