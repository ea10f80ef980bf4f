"""RFC 9457 problem details: every error a client sees, and never a stack trace."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import Problem, invalid, not_found

log = logging.getLogger("tollgate.api")
MEDIA_TYPE = "application/problem+json"
# How long a client should wait before retrying when the database or Temporal is unreachable.
RETRY_AFTER_SECONDS = 5
# The database cannot be reached, or is too busy to answer (SQLite "database is locked", a full
# connection pool): nothing was changed, and the same request may succeed later.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
__all__ = ["MEDIA_TYPE", "Problem", "install", "invalid", "not_found", "problem_response"]


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
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, exc.errors)

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
        return problem_response(exc.status_code, "http-error", str(exc.detail), str(exc.detail))

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
