"""Change orders: proposed changes to an engagement's unbilled milestones, under dual sign-off.

The rules live in ``services.change_orders``: a proposal is checked and recorded there, then its
``ChangeOrderApproval`` workflow is started; the engagement changes only once both roles approve.
"""

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import ChangeOrder as ChangeOrderOut
from api.models import ChangeOrderAccepted, Page
from api.problems import Problem, not_found
from api.routes.listings import Cursor, Limit, keyset_page
from api.schemas import ChangeOrderIn
from api.views import change_order_view
from db.models import ChangeOrder
from services.access import load_engagement
from services.change_orders import propose, start_change_order

router = APIRouter(prefix="/v1", tags=["change orders"])
REPEATED = "The same proposal again: its sign-off was started before, nothing new starts."


@router.post(
    "/engagements/{engagement_id}/change-orders",
    status_code=202,
    response_description="Recorded; its sign-off is started.",
    responses={200: {"model": ChangeOrderAccepted, "description": REPEATED}},
)
async def propose_change_order(
    engagement_id: str,
    body: ChangeOrderIn,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ChangeOrderAccepted:
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
    response.status_code = 202 if proposal.new else 200
    return ChangeOrderAccepted(
        id=order.change_order_id,
        run_id=order.run_id,
        engagement_id=order.engagement_id,
        status=proposal.status,
        base_version=order.base_version,
        status_url=link(request, "get_run", run_id=order.run_id),
        change_order_url=link(request, "get_change_order", change_order_id=order.change_order_id),
    )


@router.get("/engagements/{engagement_id}/change-orders")
def list_change_orders(
    engagement_id: str,
    session: SessionDep,
    caller: CallerDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ChangeOrderOut]:
    """The engagement's change orders, oldest first."""
    engagement = load_engagement(session, engagement_id, caller)
    query = select(ChangeOrder).where(ChangeOrder.engagement_id == engagement.id)
    rows, next_cursor = keyset_page(
        session, query, ChangeOrder.created_at, ChangeOrder.id, cursor, limit
    )
    return Page[ChangeOrderOut](
        items=[change_order_view(order) for order in rows], next_cursor=next_cursor
    )


@router.get("/change-orders/{change_order_id}", name="get_change_order")
def get_change_order(
    change_order_id: str, session: SessionDep, caller: CallerDep
) -> ChangeOrderOut:
    order = session.get(ChangeOrder, change_order_id)
    if order is None:
        raise not_found("Change order", change_order_id)
    load_engagement(session, order.engagement_id, caller)
    return ChangeOrderOut.model_validate(change_order_view(order))
