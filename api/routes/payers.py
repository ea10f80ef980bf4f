"""Payers and their effective-dated fee schedules (admin only)."""

from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.deps import AdminDep, SessionDep
from api.models import FeeSchedule, Payer
from api.problems import Problem
from domain.encounter_pricing import in_effect
from services.payers import (
    FeeScheduleIn,
    PayerIn,
    create_payer,
    get_payer,
    payer_view,
    put_fee_schedule,
    schedule_versions,
    schedule_view,
)

router = APIRouter(prefix="/v1/payers", tags=["encounters"])


@router.post(
    "",
    status_code=201,
    response_description="Created.",
    responses={200: {"model": Payer, "description": "The same payer, again."}},
)
def post_payer(body: PayerIn, response: Response, session: SessionDep, _: AdminDep) -> Payer:
    """Create a payer; the same body again answers 200 with it, a different one 409."""
    written = create_payer(session, body)
    response.status_code = 201 if written.created else 200
    return Payer.model_validate(payer_view(written.row, schedule_versions(session, written.row.id)))


@router.get("/{payer_id}")
def get_payer_route(payer_id: str, session: SessionDep, _: AdminDep) -> Payer:
    payer = get_payer(session, payer_id)
    return Payer.model_validate(payer_view(payer, schedule_versions(session, payer.id)))


@router.put(
    "/{payer_id}/fee-schedule",
    status_code=201,
    response_description="A new version, created.",
    responses={200: {"model": FeeSchedule, "description": "The same version, again."}},
)
async def put_schedule(
    payer_id: str, body: FeeScheduleIn, response: Response, session: SessionDep, caller: AdminDep
) -> FeeSchedule:
    """A new schedule version in effect from ``effective_from`` (until a later one); versions
    are never edited, and encounters already priced keep their price."""
    written = await run_in_threadpool(put_fee_schedule, session, payer_id, body, caller.actor)
    response.status_code = 201 if written.created else 200
    return FeeSchedule.model_validate(schedule_view(written.row))


@router.get("/{payer_id}/fee-schedule")
def get_schedule(
    payer_id: str, session: SessionDep, _: AdminDep, on: date | None = None
) -> FeeSchedule:
    """The version in effect on ``on`` (default: the latest version)."""
    return FeeSchedule.model_validate(schedule_view(_version(session, payer_id, on)))


def _version(session: Session, payer_id: str, on: date | None) -> Any:
    versions = schedule_versions(session, get_payer(session, payer_id).id)
    index = in_effect([v.effective_from for v in versions], on) if on else len(versions) - 1
    if index is None or index < 0:
        when = f" on {on}" if on else ""
        raise Problem(
            404,
            "not-found",
            "No fee schedule",
            f"Payer {payer_id!r} has no schedule in effect{when}.",
        )
    return versions[index]
