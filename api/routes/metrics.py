"""``GET /metrics``: the API's Prometheus metrics (``api/metrics.py``), for an admin token.

Admin only: the books' counts and billed amounts are business figures. Point Prometheus at it
with ``authorization: {credentials_file: …}`` holding the admin token.
"""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AdminDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request, _: AdminDep) -> Response:
    """Requests by route and status, latency, runs by kind and stage, amounts billed."""
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
