"""Change orders: proposed changes to an engagement's unbilled milestones, under dual sign-off.

The rules live in ``services.change_orders``: a proposal is checked and recorded there, then its
``ChangeOrderApproval`` workflow is started; the engagement changes only once both roles approve.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.problems import Problem, not_found
from api.schemas import ChangeOrderIn
from api.views import change_order_view
from db.models import ChangeOrder
from services.access import load_engagement
from services.change_orders import propose, start_change_order

router = APIRouter(prefix="/v1", tags=["change orders"])


@router.post("/engagements/{engagement_id}/change-orders", status_code=202)
async def propose_change_order(
    engagement_id: str,
    body: ChangeOrderIn,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """Record the proposal and start its sign-off; the same proposal again starts nothing new."""
    proposal = await run_in_threadpool(propose, session, caller, engagement_id, body)
    try:
        await start_change_order(temporal, settings.task_queue, proposal.order)
    except RPCError as exc:
        raise Problem(
            503,
            "temporal-unavailable",
            "Change order sign-off not started yet",
            f"Change order {proposal.order.change_order_id} is recorded but its sign-off could "
            "not be started; send the same request again to start it.",
        ) from exc
    order = proposal.order
    payload = {
        "id": order.change_order_id,
        "run_id": order.run_id,
        "engagement_id": order.engagement_id,
        "status": proposal.status,
        "base_version": order.base_version,
        "status_url": link(request, "get_run", run_id=order.run_id),
        "change_order_url": link(
            request, "get_change_order", change_order_id=order.change_order_id
        ),
    }
    return JSONResponse(payload, status_code=202 if proposal.new else 200)


@router.get("/engagements/{engagement_id}/change-orders")
def list_change_orders(
    engagement_id: str, session: SessionDep, caller: CallerDep
) -> list[dict[str, Any]]:
    engagement = load_engagement(session, engagement_id, caller)
    orders = session.scalars(
        select(ChangeOrder)
        .where(ChangeOrder.engagement_id == engagement.id)
        .order_by(ChangeOrder.created_at, ChangeOrder.id)
    )
    return [change_order_view(order) for order in orders]


@router.get("/change-orders/{change_order_id}", name="get_change_order")
def get_change_order(
    change_order_id: str, session: SessionDep, caller: CallerDep
) -> dict[str, Any]:
    order = session.get(ChangeOrder, change_order_id)
    if order is None:
        raise not_found("Change order", change_order_id)
    load_engagement(session, order.engagement_id, caller)
    return change_order_view(order)
