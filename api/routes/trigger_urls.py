"""Signed trigger URLs over HTTP: the admin issues, lists and revokes them; the door
``POST /v1/t/{token}`` takes a trigger with no header at all (``services.trigger_urls``).

The door ends where the bearer door does, in ``api.trigger_door.accept_and_start``, with the body
validated by the same ``TriggerIn``. Its idempotency key is the ``Idempotency-Key`` header if
sent, else the ``idempotency_key`` query parameter, else a fresh one per call: a caller that
cannot set either and retries meets the milestone's open run (409), which changes nothing.

The caller's address recorded in the audit trail is ``request.client.host``: the TCP peer, or,
when the peer is one of ``TOLLGATE_TRUSTED_PROXIES``, the client it forwarded for
(``api/serving.py``). From anyone else ``X-Forwarded-For`` is not read, as any client can set it.
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select

from api.deps import AdminDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import Page, RunAccepted, TriggerUrlIssued
from api.models import TriggerUrl as TriggerUrlOut
from api.problems import Problem
from api.routes.listings import Cursor, Limit, keyset_page
from api.schemas import TriggerIn
from api.trigger_door import accept_and_start
from config import Settings
from db.trigger_urls import TriggerUrl
from domain.times import iso
from services import trigger_urls
from services.access import load_engagement
from services.trigger_urls import MAX_KEY, TokenInvalid, TriggerUrlIn

router = APIRouter(prefix="/v1", tags=["trigger URLs"])
SOURCE = "signed-url"


def _door_body_schema() -> dict[str, Any]:
    schema = TriggerIn.model_json_schema()
    schema["title"] = "SignedUrlTrigger"
    schema["properties"]["source"]["default"] = SOURCE
    return schema


@router.post("/engagements/{engagement_id}/trigger-urls", status_code=status.HTTP_201_CREATED)
def create_trigger_url(
    engagement_id: str,
    body: TriggerUrlIn,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
) -> TriggerUrlIssued:
    """A URL that triggers one milestone (by key or id) until it expires, is revoked or is used
    ``max_uses`` times. The URL is shown in full only in this answer."""
    secret = _secret(settings)
    now = datetime.now(UTC)
    url = trigger_urls.create(session, caller, engagement_id, body, now)
    token = trigger_urls.sign(secret, url.id)
    return TriggerUrlIssued.model_validate(
        {**_view(url, now), "url": link(request, "use_trigger_url", token=token)}
    )


@router.get("/engagements/{engagement_id}/trigger-urls")
def list_trigger_urls(
    engagement_id: str,
    session: SessionDep,
    caller: AdminDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[TriggerUrlOut]:
    """The engagement's trigger URLs, oldest first, without their tokens."""
    engagement = load_engagement(session, engagement_id, caller)
    query = select(TriggerUrl).where(TriggerUrl.engagement_id == engagement.id)
    rows, next_cursor = keyset_page(
        session, query, TriggerUrl.created_at, TriggerUrl.id, cursor, limit
    )
    now = datetime.now(UTC)
    return Page[TriggerUrlOut](items=[_view(u, now) for u in rows], next_cursor=next_cursor)


@router.delete("/trigger-urls/{trigger_url_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_trigger_url(trigger_url_id: str, session: SessionDep, caller: AdminDep) -> None:
    """Revoke at once (idempotent): the URL answers 410 from now on."""
    trigger_urls.revoke(session, caller, trigger_url_id, datetime.now(UTC))


@router.post(
    "/t/{token}",
    name="use_trigger_url",
    status_code=status.HTTP_202_ACCEPTED,
    response_description="Accepted: the trigger is recorded and its run started.",
    responses={
        200: {
            "model": RunAccepted,
            "description": "This idempotency key was accepted before: the same run.",
        }
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _door_body_schema()}},
        }
    },
)
async def use_trigger_url(
    token: str,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    header_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description=f"Optional; at most {MAX_KEY} characters."),
    ] = None,
    query_key: Annotated[
        str | None,
        Query(alias="idempotency_key", description="Used when no Idempotency-Key header is sent."),
    ] = None,
) -> RunAccepted:
    """Trigger the URL's milestone; no token header. The body is optional Tollgate trigger JSON
    (read as JSON whatever its Content-Type); without one the trigger is 100 % complete.

    A token this server did not sign answers 404; a URL that expired, was revoked or is used up
    answers 410 (``trigger-url-expired``, ``-revoked``, ``-used-up``)."""
    secret = _secret(settings)
    try:
        trigger_url_id = trigger_urls.read(secret, token)
    except TokenInvalid:
        raise trigger_urls.unknown_url() from None
    key = _key(header_key if header_key is not None else query_key)
    data = _trigger_data(await request.body())
    address = request.client.host if request.client else "unknown"
    now = datetime.now(UTC)
    use = await run_in_threadpool(
        trigger_urls.claim_use, session, trigger_url_id, address, key, now
    )
    try:
        accepted = await accept_and_start(
            session, use.caller, use.milestone_id, use.key, data, temporal, settings.task_queue
        )
    except Exception:
        # Refused before its commit (open run, closed engagement …): the use is not counted.
        # After the commit (Temporal unreachable) this rolls back nothing: the use stands.
        await run_in_threadpool(session.rollback)
        raise
    if not accepted.new:  # a replayed key: the earlier use stands, this one is not counted
        await run_in_threadpool(session.rollback)
    run = accepted.run
    response.status_code = 202 if accepted.new else 200
    return RunAccepted(
        run_id=run.run_id,
        milestone_id=run.milestone_id,
        stage=accepted.stage,
        status_url=link(request, "get_run", run_id=run.run_id),
    )


def _secret(settings: Settings) -> str:
    if not settings.link_secret:
        raise Problem(
            503,
            "links-unavailable",
            "Trigger URLs unavailable",
            "No link secret is configured (TOLLGATE_LINK_SECRET), so trigger URLs are off.",
        )
    return settings.link_secret


def _key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise Problem(
            400,
            "idempotency-key-required",
            "Idempotency key empty",
            "An idempotency key, when sent, must not be empty; or send none.",
        )
    if len(value) > MAX_KEY:
        raise Problem(
            400,
            "idempotency-key-too-long",
            "Idempotency key too long",
            f"An idempotency key is at most {MAX_KEY} characters.",
        )
    return value


def _refuse_constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number; send numbers as decimal strings")


def _invalid(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


def _trigger_data(body: bytes) -> dict[str, Any]:
    """The trigger as the bearer door would take it, defaulting ``source`` to "signed-url"."""
    parsed: Any = {}
    if body.strip():
        try:
            parsed = json.loads(body, parse_constant=_refuse_constant)
        except RecursionError:
            raise _invalid("the body is nested too deeply") from None
        except ValueError:
            raise Problem(
                400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
            ) from None
    if not isinstance(parsed, dict):
        raise _invalid("the body must be a JSON object (Tollgate's trigger JSON) or empty")
    try:
        return TriggerIn.model_validate({"source": SOURCE, **parsed}).model_dump(mode="json")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _view(url: TriggerUrl, now: datetime) -> dict[str, Any]:
    return {
        "id": url.id,
        "engagement_id": url.engagement_id,
        "milestone_id": url.milestone_id,
        "created_at": iso(url.created_at),
        "created_by": url.created_by,
        "expires_at": iso(url.expires_at),
        "max_uses": url.max_uses,
        "uses": url.uses,
        "revoked_at": iso(url.revoked_at),
        "status": trigger_urls.status(url, now),
    }
