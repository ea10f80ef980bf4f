"""The signed-webhook door, ``POST /v1/hooks/{source_id}``: a Standard Webhooks signature instead
of a bearer token, the source's JMESPath mapping instead of Tollgate's JSON, and the
``webhook-id`` as the idempotency key (unless the mapping names one). It ends where every
trigger door ends, in ``api.trigger_door.accept_and_start``.

A delivery that is not signed by the source is refused (401) and leaves no trace. A verified one
is logged once with the answer it got, so the same ``webhook-id`` again gets that answer again
and changes nothing. Only a 5xx is not logged: the sender retries, and the retry is answered
afresh (a trigger already recorded replays under its idempotency key).
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import DeliveryAnswer, RunAccepted
from api.problems import MEDIA_TYPE, Problem
from api.schemas import TriggerIn
from api.trigger_door import accept_and_start
from config import Settings
from db.session import read_only_sessions
from db.sources import DeliveryOutcome, InboundSource, SourceDelivery
from db.types import utcnow
from services import deliveries, mappings, sources
from services.source_secrets import BadSignature, verify

router = APIRouter(tags=["sources"])
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID = 255
# Declares the door's authentication in the OpenAPI document; the route checks it itself.
SIGNATURE = APIKeyHeader(
    name="webhook-signature",
    scheme_name="StandardWebhooks",
    auto_error=False,
    description="Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature "
    "('v1,<base64 HMAC-SHA256>', several separated by spaces) signed with the source's secret.",
)
PAYLOAD = {
    "required": True,
    "content": {"application/json": {"schema": {"description": "Any JSON the mapping reads."}}},
}


@dataclass
class Answer:
    outcome: DeliveryOutcome
    status: int
    body: dict[str, Any]
    reason: str | None = None
    run_id: str | None = None


@router.post(
    "/v1/hooks/{source_id}",
    name="source_hook",
    status_code=202,
    response_model=RunAccepted,
    openapi_extra={"requestBody": PAYLOAD},
    responses={
        200: {
            "model": DeliveryAnswer,
            "description": "Ignored by the mapping's `when`, or the same trigger as before.",
        },
        202: {"description": "Accepted: the trigger's run is started."},
    },
)
async def deliver(
    source_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    _: Annotated[str | None, Security(SIGNATURE)] = None,
) -> JSONResponse:
    """Verify, map and accept one delivery from an external system."""
    headers = {name: request.headers.get(name, "") for name in HEADERS}
    if not all(headers.values()):
        raise Problem(
            401,
            "signature-required",
            "Signature required",
            "Deliveries are signed (Standard Webhooks): send webhook-id, webhook-timestamp "
            "and webhook-signature.",
        )
    payload = await request.body()
    sessions = request.app.state.session_factory
    source, earlier = await run_in_threadpool(
        _verified, sessions, source_id, payload, headers, settings.link_secret
    )
    if earlier is not None:
        return _response(earlier)
    webhook_id = headers["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID:
        raise Problem(
            400,
            "webhook-id-too-long",
            "webhook-id too long",
            f"The webhook-id header must be at most {MAX_WEBHOOK_ID} characters.",
        )
    answer = await _answer(source, webhook_id, payload, request, session, settings, temporal)
    delivery = await run_in_threadpool(
        deliveries.record,
        session,
        source.id,
        webhook_id,
        payload,
        answer.outcome,
        answer.status,
        answer.body,
        answer.reason,
        answer.run_id,
    )
    return _response(delivery)


def _verified(
    sessions: sessionmaker[Session],
    source_id: str,
    payload: bytes,
    headers: dict[str, str],
    link_secret: str,
) -> tuple[InboundSource, SourceDelivery | None]:
    """The source, if it signed this delivery, and the delivery's earlier answer if any; read in
    a short read-only session so a refused delivery never waits for or holds a write lock."""
    with read_only_sessions(sessions)() as reader:
        source = sources.active_source(reader, source_id)
        try:
            verify(sources.signing_secrets(source, link_secret), payload, headers, utcnow())
        except BadSignature as exc:
            raise Problem(
                401,
                "bad-signature",
                "Signature not verified",
                f"The delivery is not signed by source {source.id}: {exc}.",
            ) from None
        return source, deliveries.find(reader, source.id, headers["webhook-id"])


async def _answer(
    source: InboundSource,
    webhook_id: str,
    payload: bytes,
    request: Request,
    session: Session,
    settings: Settings,
    temporal: Client,
) -> Answer:
    try:
        mapped = mappings.apply(source.mapping, _parse(payload))
    except mappings.MappingFailed as failed:
        return _refused(_mapping_problem(failed.field, failed.expression, failed.reason))
    except Problem as problem:
        return _refused(problem)
    if isinstance(mapped, mappings.Ignored):
        body = {"ignored": True, "reason": mapped.reason}
        return Answer(DeliveryOutcome.IGNORED, 200, body, mapped.reason)
    try:
        trigger = TriggerIn(source=source.name, **mapped.trigger).model_dump(mode="json")
    except ValidationError as exc:
        return _refused(_invalid_trigger(exc))
    try:
        milestone_id, evidence_id = await run_in_threadpool(
            _prepare, session, source, mapped, webhook_id, payload, settings.evidence_max_bytes
        )
        trigger["evidence_ids"] = [evidence_id]
        accepted = await accept_and_start(
            session,
            deliveries.source_caller(source),
            milestone_id,
            mapped.key or webhook_id,
            trigger,
            temporal,
            settings.task_queue,
        )
    except Problem as problem:
        await run_in_threadpool(session.rollback)
        if problem.status >= 500:
            raise
        return _refused(problem)
    run = accepted.run
    body = {
        "run_id": run.run_id,
        "milestone_id": run.milestone_id,
        "stage": accepted.stage,
        "status_url": link(request, "get_run", run_id=run.run_id),
    }
    return Answer(DeliveryOutcome.ACCEPTED, 202 if accepted.new else 200, body, run_id=run.run_id)


def _prepare(
    session: Session,
    source: InboundSource,
    mapped: mappings.Mapped,
    webhook_id: str,
    payload: bytes,
    max_bytes: int,
) -> tuple[str, str]:
    """The milestone the payload names, and the payload kept as evidence (not yet committed)."""
    milestone_id = sources.milestone_id(session, source, mapped.milestone)
    if milestone_id is None:
        expression = source.mapping["milestone"]
        reason = f"evaluated to {mapped.milestone!r}, not a milestone of this engagement"
        raise _mapping_problem("milestone", expression, reason)
    if len(payload) > max_bytes:
        raise Problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"The payload exceeds the {max_bytes}-byte evidence limit, so it cannot be kept "
            "as the trigger's evidence; nothing was triggered.",
        )
    return milestone_id, deliveries.keep_payload(session, source, webhook_id, payload)


def _parse(payload: bytes) -> Any:
    """The payload as JSON with every non-integer number an exact ``Decimal``."""
    try:
        return json.loads(payload, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        detail = "The payload is nested too deeply."
    except ValueError as exc:
        detail = f"The payload is not valid JSON: {exc}"
    raise Problem(400, "malformed-json", "Malformed JSON", detail)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _mapping_problem(field: str, expression: str, reason: str) -> Problem:
    message = f"{expression!r} {reason}"
    return Problem(
        422,
        "mapping-failed",
        "Mapping failed",
        f"The source's mapping failed on this payload: {field}: {message}.",
        [{"field": f"mapping.{field}", "message": message}],
    )


def _invalid_trigger(exc: ValidationError) -> Problem:
    errors = [
        {"field": "mapping." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(
        422, "mapping-failed", "Mapping failed", f"The mapped trigger is invalid: {detail}", errors
    )


def _refused(problem: Problem) -> Answer:
    body: dict[str, Any] = {
        "type": f"urn:tollgate:problem:{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return Answer(DeliveryOutcome.REFUSED, problem.status, body, problem.detail)


def _response(delivery: SourceDelivery) -> JSONResponse:
    media = MEDIA_TYPE if delivery.status_code >= 400 else "application/json"
    return JSONResponse(delivery.response, status_code=delivery.status_code, media_type=media)
