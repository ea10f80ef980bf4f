"""Encounters: one JSON encounter, or a batch as NDJSON or CSV with an answer per row; each batch
is billed by a ``BillEncounters`` workflow (``workflows/encounters.py``), or — when the
engagement's approval says ``"encounters": "sign_off"`` — by its ``EncounterSignOff`` once
approved (``workflows/encounter_sign_off.py``)."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import (
    Encounter as EncounterOut,
)
from api.models import (
    EncounterAccepted,
    EncounterUpload,
    json_response,
)
from api.models import (
    EncounterBatch as BatchOut,
)
from api.problems import Problem, not_found, temporal_unreachable
from db.encounters import Encounter, EncounterBatch
from domain.times import iso
from services.access import load_engagement
from services.callers import Caller
from services.encounter_batches import batch_view
from services.encounter_sign_offs import Signing, open_sign_off, refuse_unsigned, start_sign_off
from services.encounter_uploads import (
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    Raw,
    parse_csv,
    parse_json,
    parse_ndjson,
)
from services.encounters import Upload, check_uploader, record_upload
from workflows.encounters import BillEncounters, BillEncountersInput

Parser = Callable[[bytes], list[Raw]]

router = APIRouter(prefix="/v1/engagements", tags=["encounters"])
# The body limit of the upload path (api.app.RequestBodyGuard): a 10,000-row batch is over 1 MiB.
UPLOAD_PATH = "/v1/engagements/*/encounters"
__all__ = ["MAX_UPLOAD_BYTES", "UPLOAD_PATH", "router"]

PARSERS: dict[str, Parser] = {
    "application/json": parse_json,
    "application/x-ndjson": parse_ndjson,
    "application/ndjson": parse_ndjson,
    "text/csv": parse_csv,
}
_ROW = {"type": "object", "description": "encounter_id, procedure_code, service_date, ..."}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _ROW},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/{engagement_id}/encounters",
    openapi_extra=UPLOAD_BODY,
    response_model=EncounterUpload,
    response_model_exclude_unset=True,
    responses={
        200: {"description": "A batch (NDJSON or CSV): an answer per row."},
        201: {
            "model": EncounterAccepted,
            "description": "One encounter (JSON), accepted and priced.",
        },
    },
)
async def post_encounters(
    engagement_id: str,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> EncounterUpload | JSONResponse:
    """Check and price each encounter from the payer's fee schedule in effect on its service
    date, record the accepted ones and start billing them.

    A JSON object is one encounter: 201, or the row's refusal as problem+json. NDJSON or CSV is
    a batch of up to 10,000: always 200 (when it could be read) with ``accepted``, ``refused``
    and ``results`` (``row``, ``encounter_id``, ``status`` 201/409/422, ``amount_minor`` or
    ``error``). Refused rows change nothing and do not affect the others.
    """
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    parse = PARSERS.get(media)
    if parse is None:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send application/json (one encounter), application/x-ndjson or text/csv "
            f"(up to {MAX_ROWS:,} encounters).",
        )
    body = await request.body()
    upload = await run_in_threadpool(_upload, session, caller, engagement_id, parse, body)
    batch = upload.batch
    signing = await run_in_threadpool(open_sign_off, session, batch) if batch else None
    billing = await start_billing(temporal, settings.task_queue, batch, signing) if batch else None
    if parse is parse_json:
        result = upload.results[0]
        if result.error is not None:
            error = result.error
            raise Problem(
                result.status,
                error["type"],
                "Encounter refused",
                error["detail"],
                error.get("errors"),
            )
        body = {
            **result.as_dict(),
            **_batch_links(request, engagement_id, batch, billing, signing),
        }
        return json_response(EncounterAccepted.model_validate(body), 201)
    accepted = sum(1 for r in upload.results if r.error is None)
    return EncounterUpload.model_validate(
        {
            "accepted": accepted,
            "refused": len(upload.results) - accepted,
            **_batch_links(request, engagement_id, batch, billing, signing),
            "results": [r.as_dict() for r in upload.results],
        }
    )


@router.get("/{engagement_id}/encounter-batches/{batch_id}", name="get_encounter_batch")
def get_batch(
    engagement_id: str, batch_id: str, session: SessionDep, caller: CallerDep
) -> BatchOut:
    """How far billing has come: encounters billed, and on which invoices."""
    return BatchOut.model_validate(
        batch_view(session, _batch(session, caller, engagement_id, batch_id))
    )


@router.post("/{engagement_id}/encounter-batches/{batch_id}/bill")
async def bill_batch(
    engagement_id: str,
    batch_id: str,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> BatchOut:
    """Start billing a batch whose workflow could not be started (Temporal was away); billing
    again posts only what is not billed yet. A batch under sign-off starts its sign-off (it
    bills once approved); one whose sign-off ended without approval is refused (409)."""
    batch = await run_in_threadpool(_batch, session, caller, engagement_id, batch_id)
    await run_in_threadpool(check_uploader, session, caller, engagement_id)
    await run_in_threadpool(refuse_unsigned, session, batch)
    signing = await run_in_threadpool(open_sign_off, session, batch)
    await run_in_threadpool(session.rollback)
    if await start_billing(temporal, settings.task_queue, batch, signing) == "pending":
        raise Problem(
            503,
            "temporal-unavailable",
            "Billing not started",
            "Temporal cannot be reached right now; the encounters are kept. Retry later.",
        )
    return BatchOut.model_validate(await run_in_threadpool(batch_view, session, batch))


@router.get("/{engagement_id}/encounters/{encounter_id}", response_model_exclude_unset=True)
def get_encounter(
    engagement_id: str, encounter_id: str, session: SessionDep, caller: CallerDep
) -> EncounterOut:
    """One encounter by its ``encounter_id``; ``patient_ref`` is shown to the admin only."""
    load_engagement(session, engagement_id, caller)
    encounter = session.scalar(
        select(Encounter).where(
            Encounter.engagement_id == engagement_id, Encounter.encounter_id == encounter_id
        )
    )
    if encounter is None:
        raise not_found("Encounter", encounter_id)
    view = {
        "encounter_id": encounter.encounter_id,
        "batch_id": encounter.batch_id,
        "procedure_code": encounter.procedure_code,
        "modifiers": encounter.modifiers,
        "units": encounter.units,
        "service_date": encounter.service_date.isoformat(),
        "payer_id": encounter.payer_id,
        "fee_schedule_id": encounter.fee_schedule_id,
        "unit_amount_minor": encounter.unit_amount_minor,
        "amount_minor": encounter.amount_minor,
        "status": encounter.status,
        "invoice_id": encounter.invoice_id,
        "line_id": encounter.line_id,
        "created_at": iso(encounter.created_at),
        "billed_at": iso(encounter.billed_at),
    }
    if caller.kind == "admin":
        view["patient_ref"] = encounter.patient_ref
    return EncounterOut.model_validate(view)


async def start_billing(
    temporal: Client, task_queue: str, batch: EncounterBatch, signing: Signing | None = None
) -> str:
    """``started`` (or already running), ``awaiting_sign_off`` (its sign-off started: it bills
    once approved), or ``pending`` when Temporal cannot be reached: the encounters are recorded,
    and ``POST …/encounter-batches/{id}/bill`` (or the reconciler) starts it later."""
    try:
        if signing is not None:
            await start_sign_off(temporal, task_queue, signing.batch)
            return "awaiting_sign_off"
        await temporal.start_workflow(
            BillEncounters.run,
            BillEncountersInput(batch.engagement_id, batch.id),
            id=batch.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"bill {batch.accepted} encounters of batch {batch.id}",
        )
    except (RPCError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not temporal_unreachable(exc):
            raise
        return "pending"
    return "started"


def _batch_links(
    request: Request,
    engagement_id: str,
    batch: EncounterBatch | None,
    billing: str | None,
    signing: Signing | None = None,
) -> dict[str, Any]:
    if batch is None:
        return {"batch_id": None, "billing": None}
    url = link(request, "get_encounter_batch", engagement_id=engagement_id, batch_id=batch.id)
    links = {
        "batch_id": batch.id,
        "workflow_id": batch.workflow_id,
        "billing": billing,
        "batch_url": url,
    }
    if signing is not None:
        links["sign_off_run_id"] = signing.run_id
    return links


def _upload(
    session: Session, caller: Caller, engagement_id: str, parse: Parser, body: bytes
) -> Upload:
    """Access first, then the rows: a stranger learns nothing from a malformed body."""
    check_uploader(session, caller, engagement_id)
    rows = parse(body)
    return record_upload(session, caller, engagement_id, rows, datetime.now(UTC).date())


def _batch(session: Session, caller: Caller, engagement_id: str, batch_id: str) -> EncounterBatch:
    load_engagement(session, engagement_id, caller)
    batch = session.get(EncounterBatch, batch_id)
    if batch is None or batch.engagement_id != engagement_id:
        raise not_found("Encounter batch", batch_id)
    return batch
