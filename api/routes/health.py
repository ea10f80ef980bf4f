from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SessionDep, TemporalDep
from api.models import Health
from api.problems import temporal_unreachable

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_description="The database and Temporal both answer.",
    responses={503: {"model": Health, "description": "The database or Temporal does not answer."}},
)
async def healthz(session: SessionDep, temporal: TemporalDep, response: Response) -> Health:
    """200 when both the database and Temporal answer; 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(session.execute, text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await temporal_answers(temporal)
        checks["temporal"] = "ok"
    except Exception as exc:  # the API still serves; endpoints that need Temporal answer 503
        unreachable = temporal_unreachable(exc)
        checks["temporal"] = "unreachable" if unreachable else f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    response.status_code = 200 if healthy else 503
    return Health(status="ok" if healthy else "unavailable", **checks)


async def temporal_answers(client: Client) -> None:
    """Temporal's health check, asked a second time if the client's transport cancelled the first.

    Temporal's frontend recycles every connection after a while (its dynamic config
    ``frontend.keepAliveMaxConnectionAge``, 5 minutes by default). While a worker on the same
    client holds a long poll open, the first call after that fails as CANCELLED ("operation was
    canceled") and the next call reconnects. The SDK asks its own calls again (``retry=True``);
    asking the health check that way would also wait out a Temporal that is really down, so it
    is asked again only for this."""
    try:
        await client.service_client.check_health()
    except RPCError as exc:
        if exc.status != RPCStatusCode.CANCELLED:
            raise
        await client.service_client.check_health()
