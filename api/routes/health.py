from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionDep, TemporalDep
from api.problems import temporal_unreachable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(session: SessionDep, temporal: TemporalDep) -> JSONResponse:
    """200 when both the database and Temporal answer; 503 naming what does not."""
    checks: dict[str, Any] = {}
    try:
        await run_in_threadpool(session.execute, text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await temporal.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:  # the API still serves; endpoints that need Temporal answer 503
        unreachable = temporal_unreachable(exc)
        checks["temporal"] = "unreachable" if unreachable else f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", **checks},
        status_code=200 if healthy else 503,
    )
