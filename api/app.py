"""create_app(): the FastAPI application, one Temporal client and one engine per process."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fnmatch import fnmatchcase
from typing import Any

from fastapi import Depends, FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import docs_pages, openapi, problems
from api.deps import refuse_nul_in_path
from api.metrics import instrument
from api.pages import approve
from api.routes import (
    audit,
    change_orders,
    closeout,
    credit_notes,
    customers,
    documents,
    encounters,
    engagements,
    evidence,
    health,
    hooks,
    invoices,
    kpi_reports,
    listings,
    me,
    notifications,
    payers,
    principals,
    runs,
    sla_periods,
    sources,
    time_entries,
    trigger_urls,
)
from config import Settings, get_settings
from db.session import make_engine, make_session_factory
from domain.bounds import MAX_JSON_BODY_BYTES, MAX_JSON_DEPTH
from telemetry import Tracing, tracing

# Room for an evidence upload's multipart framing and description around the file itself, so
# the route's own, more precise, limit speaks for files just over it.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None, temporal: Client | None = None, traced: Tracing | None = None
) -> FastAPI:
    """With tracing configured (``traced``, else the environment: ``telemetry.py``) requests
    are traced and the Temporal client carries their trace into the runs they start."""
    settings = settings or get_settings()
    traced = traced or tracing("tollgate-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.session_factory = make_session_factory(engine)
        # Lazily connected: the API serves while Temporal is down, and the endpoints that need
        # it answer 503 until it is reachable (see api.problems.temporal_unreachable).
        app.state.temporal = temporal or await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
        )
        if traced is not None:
            app.state.temporal = traced.client(app.state.temporal)
        yield
        engine.dispose()
        if traced is not None:
            traced.flush()

    app = FastAPI(
        title="Tollgate",
        version="1.0.0",
        summary="Outcome-based billing: milestone triggers, sign-off, retention, invoices.",
        lifespan=lifespan,
        docs_url=None,  # api.docs_pages serves /docs and /redoc with their assets, no CDN
        redoc_url=None,
        dependencies=[Depends(refuse_nul_in_path)],
        responses=problems.ERROR_RESPONSES,
    )
    problems.install(app)
    app.add_middleware(
        RequestBodyGuard,
        uploads={
            **dict.fromkeys(
                (evidence.router.prefix, "/approve/"),
                settings.evidence_max_bytes + MULTIPART_OVERHEAD_BYTES,
            ),
            encounters.UPLOAD_PATH: encounters.MAX_UPLOAD_BYTES,
        },
    )
    routers = (
        principals,
        customers,
        engagements,
        closeout,
        change_orders,
        evidence,
        runs,
        kpi_reports,
        documents,  # before invoices and credit_notes: ".pdf" ids would match their routes
        invoices,
        credit_notes,
        audit,
        health,
        listings,
        me,
        approve,
        notifications,
        sources,
        hooks,
        trigger_urls,
        time_entries,
        payers,
        encounters,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(sla_periods.router)
    app.mount("/static", approve.STATIC, name="static")
    docs_pages.install(app)
    openapi.install(app)  # the document as the API answers: problem+json errors, bearer
    instrument(app)  # outermost: counts every answer, refusals included
    if traced is not None:
        traced.instrument(app)
    return app


class _Refused(ValueError):
    """A JSON body Tollgate will not parse, with the reason a client reads."""


class RequestBodyGuard:
    """Bounds every request body before the app reads it.

    Size: MAX_JSON_BODY_BYTES, or the limit given for an upload path (evidence, and the
    approver page's form with its optional file); bytes are counted as
    they stream, so a missing or false Content-Length changes nothing (413). A JSON body is read
    whole first and refused (422) for what Python's json would accept but must not reach a
    handler: NaN / Infinity (not JSON numbers; money and KPIs are decimal strings) and nesting
    deeper than MAX_JSON_DEPTH anywhere.
    """

    def __init__(self, app: ASGIApp, uploads: dict[str, int]) -> None:
        self.app = app
        self.uploads = uploads

    def _limit(self, path: str) -> int:
        """An upload path's own limit: a path given with a trailing slash covers what is below,
        one with a ``*`` the paths it matches."""
        for prefix, limit in self.uploads.items():
            if (
                path.rstrip("/") == prefix.rstrip("/")
                or (prefix.endswith("/") and path.startswith(prefix))
                or ("*" in prefix and fnmatchcase(path, prefix))
            ):
                return limit
        return MAX_JSON_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self._limit(scope["path"])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problems.body_too_large(limit)(scope, receive, send)
            return
        counted = _counting(receive, limit)
        if not _is_json(headers.get("content-type")):
            await self.app(scope, counted, send)
            return
        try:
            body = await _read_body(counted)
        except HTTPException:  # too large
            await problems.body_too_large(limit)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        try:
            _check_json(body)
        except _Refused as refused:
            message = str(refused)
            errors = [{"field": "body", "message": message}]
            response = problems.problem_response(
                422, "validation-error", "Invalid request", message, errors
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _counting(receive: Receive, limit: int) -> Receive:
    """`receive`, raising a 413 HTTPException (which FastAPI lets through) past `limit` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(413, problems.too_large_detail(limit))
        return message

    return counted


def _is_json(content_type: str | None) -> bool:
    """The media types FastAPI parses as JSON: application/json and application/*+json."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number; send numbers as decimal strings")


def _check_json(body: bytes) -> None:
    """Raises _Refused for NaN / Infinity or nesting too deep; malformed JSON is left to FastAPI,
    which answers it with a 400."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise _Refused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        if isinstance(exc, _Refused):
            raise
        return
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise _Refused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        pending += [(child, depth + 1) for child in children]
