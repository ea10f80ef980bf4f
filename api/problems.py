"""RFC 9457 problem details: every error a client sees, and never a stack trace."""

import functools
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from services.errors import Problem, invalid, not_found

log = logging.getLogger("tollgate.api")
MEDIA_TYPE = "application/problem+json"
# How long a client should wait before retrying when the database or Temporal is unreachable.
RETRY_AFTER_SECONDS = 5
AUTHENTICATE = 'Bearer realm="tollgate"'
# The database cannot be reached, or is too busy to answer (SQLite "database is locked", a full
# connection pool): nothing was changed, and the same request may succeed later.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
__all__ = ["MEDIA_TYPE", "Problem", "install", "invalid", "not_found", "problem_response"]


# The one schema of every error body (RFC 9457 members Tollgate sends, and `errors[]`).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details: every refusal and failure, never a stack trace.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "What went wrong, as a URN: urn:tollgate:problem:<slug> (docs/api.md).",
            "examples": ["urn:tollgate:problem:validation-error"],
        },
        "title": {
            "type": "string",
            "description": "A short summary of the problem type.",
            "examples": ["Invalid request"],
        },
        "status": {
            "type": "integer",
            "minimum": 400,
            "maximum": 599,
            "description": "The HTTP status, repeated.",
            "examples": [422],
        },
        "detail": {
            "type": "string",
            "description": "This occurrence, in words meant for a person.",
            "examples": ["name: Field required"],
        },
        "errors": {
            "type": "array",
            "description": "Validation errors only: each field refused and why.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "The field's dotted path (`body` for the whole body).",
                        "examples": ["milestones.0.fee_minor"],
                    },
                    "message": {
                        "type": "string",
                        "description": "Why it was refused.",
                        "examples": ["Field required"],
                    },
                },
            },
        },
    },
}
# Stops FastAPI documenting its own 422 body; api.openapi replaces these ranges with the statuses
# each operation really answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    range_: {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
    for range_, description in (
        ("4XX", "Refused (RFC 9457 problem details); nothing was changed."),
        ("5XX", "A dependency is down or something failed on our side (problem details)."),
    )
}


def temporal_unreachable(exc: BaseException) -> bool:
    """A Temporal client connected lazily raises a bare RuntimeError while it cannot connect."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


def unavailable(what: str, detail: str) -> JSONResponse:
    """503 with Retry-After: a dependency is down; nothing was changed by this request."""
    response = problem_response(503, f"{what}-unavailable", "Service unavailable", detail)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def problem_response(
    status: int, slug: str, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:tollgate:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        response = problem_response(exc.status, exc.slug, exc.title, exc.detail, exc.errors)
        if exc.status == 401:  # RFC 9110 §11.6.1: say which scheme to authenticate with
            response.headers["WWW-Authenticate"] = AUTHENTICATE
        if exc.status == 503:  # every 503 says when to come back
            response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(
                400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
            )
        fields = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in errors]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return problem_response(422, "validation-error", "Invalid request", detail, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:  # the body grew past its limit while a handler read it
            return problem_response(413, "body-too-large", TOO_LARGE, str(exc.detail))
        response = problem_response(exc.status_code, "http-error", str(exc.detail), str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request, exc)
        return response

    for database_error in DATABASE_UNAVAILABLE:

        @app.exception_handler(database_error)
        async def _database(request: Request, exc: Exception) -> JSONResponse:
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return unavailable(
                "database", "The database cannot be reached right now; nothing was changed."
            )

    @app.exception_handler(RuntimeError)
    async def _runtime(request: Request, exc: RuntimeError) -> JSONResponse:
        if temporal_unreachable(exc):
            return unavailable(
                "temporal",
                "Temporal cannot be reached right now; anything recorded is kept. Retry later.",
            )
        return _internal_error(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def allowed_methods(request: Request, exc: StarletteHTTPException) -> str:
    """The methods the router names, and every method the OpenAPI document declares at this
    path: FastAPI's own Allow names only the first route that matched (GET and POST of one path
    are two routes)."""
    methods = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    for template, operations in request.app.openapi()["paths"].items():
        if _template(template).fullmatch(request.url.path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


TOO_LARGE = "Request body too large"


def too_large_detail(limit: int) -> str:
    return f"The request body exceeds the {limit}-byte limit; nothing was changed."


def body_too_large(limit: int) -> JSONResponse:
    return problem_response(413, "body-too-large", TOO_LARGE, too_large_detail(limit))


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )
