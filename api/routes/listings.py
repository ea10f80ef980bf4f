"""Admin lists with filters, and the keyset pagination every list of the API uses: one page
shape ``{items, next_cursor}`` (``api.models.Page``).

Items come oldest first (creation time, then id; or by a sequence number). ``next_cursor`` is
opaque (the last item's position, base64url JSON) and ``null`` on the last page; a page never skips
or repeats a row however many rows are added meanwhile, because the cursor names a position, not an
offset.
"""

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import isodate
from fastapi import APIRouter, Query, Request
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.deps import AdminDep, SessionDep
from api.links import link
from api.models import Customer as CustomerOut
from api.models import EngagementItem, Page, RunItem
from api.views import customer_view, run_amounts
from db.models import Customer, Engagement, Run
from domain.times import iso
from services.errors import invalid

router = APIRouter(prefix="/v1", tags=["listings"])

Limit = Annotated[int, Query(ge=1, le=200, description="Items per page (at most 200).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]


@router.get("/runs")
def list_runs(
    request: Request,
    session: SessionDep,
    _: AdminDep,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    engagement_id: Annotated[str | None, Query(max_length=40)] = None,
    milestone_id: Annotated[str | None, Query(max_length=40)] = None,
    older_than: Annotated[
        str | None,
        Query(max_length=40, description="ISO 8601 duration: runs created longer ago ('P3D')."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[RunItem]:
    """Runs of every kind, from the books (``runs`` table): find what is stuck or failed."""
    query = select(Run)
    if stage:
        query = query.where(Run.stage == stage)
    if engagement_id:
        query = query.where(Run.engagement_id == engagement_id)
    if milestone_id:
        query = query.where(Run.milestone_id == milestone_id)
    if older_than:
        query = query.where(Run.created_at < datetime.now(UTC) - _span(older_than))
    rows, next_cursor = keyset_page(session, query, Run.created_at, Run.id, cursor, limit)
    return Page[RunItem](items=[_run_item(request, run) for run in rows], next_cursor=next_cursor)


@router.get("/engagements")
def list_engagements(
    session: SessionDep,
    _: AdminDep,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[EngagementItem]:
    query = select(Engagement)
    if customer_id:
        query = query.where(Engagement.customer_id == customer_id)
    if status:
        query = query.where(Engagement.status == status)
    rows, next_cursor = keyset_page(
        session, query, Engagement.created_at, Engagement.id, cursor, limit
    )
    return Page[EngagementItem](items=[_engagement_item(e) for e in rows], next_cursor=next_cursor)


@router.get("/customers")
def list_customers(
    session: SessionDep, _: AdminDep, cursor: Cursor = None, limit: Limit = 50
) -> Page[CustomerOut]:
    query = select(Customer)
    rows, next_cursor = keyset_page(session, query, Customer.created_at, Customer.id, cursor, limit)
    return Page[CustomerOut](items=[customer_view(c) for c in rows], next_cursor=next_cursor)


def keyset_page(
    session: Session,
    query: Select[Any],
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    if cursor:
        after_at, after_id = _decode(cursor)
        query = query.where(or_(created > after_at, and_(created == after_at, ident > after_id)))
    rows = list(session.scalars(query.order_by(created, ident).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode(getattr(last, created.key), getattr(last, ident.key))


def numbered_page(
    session: Session,
    query: Select[Any],
    number: InstrumentedAttribute[int],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of rows ordered by a unique number (an audit chain's ``seq``, an outbox id)."""
    if cursor:
        query = query.where(number > _decode_number(cursor))
    rows = list(session.scalars(query.order_by(number).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], _encode_number(getattr(rows[limit - 1], number.key))


def _encode(at: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([iso(at), ident]).encode()).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        at, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        if moment.tzinfo is None or not isinstance(ident, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise invalid("cursor", "not a cursor this API returned; start again without one") from None
    return moment, ident


def _encode_number(value: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode()


def _decode_number(cursor: str) -> int:
    try:
        (value,) = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if type(value) is not int or not 0 <= value < 2**63:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise invalid("cursor", "not a cursor this API returned; start again without one") from None
    return value


def _span(text: str) -> timedelta:
    try:
        span = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError):
        span = None
    if not isinstance(span, timedelta) or span < timedelta(0):
        raise invalid(
            "older_than",
            f"expected an ISO 8601 duration such as 'P3D' or 'PT12H', got {text!r}",
        )
    return span


def _run_item(request: Request, run: Run) -> RunItem:
    return RunItem.model_validate(
        {
            "run_id": run.id,
            "kind": run.kind,
            "engagement_id": run.engagement_id,
            "milestone_id": run.milestone_id,
            "stage": run.stage,
            "outcome": run.outcome,
            "outcome_detail": run.outcome_detail,
            "amounts": run_amounts(run),
            "invoice_id": run.invoice_id,
            "created_at": iso(run.created_at),
            "closed_at": iso(run.closed_at),
            "status_url": link(request, "get_run", run_id=run.id),
        }
    )


def _engagement_item(engagement: Engagement) -> EngagementItem:
    return EngagementItem.model_validate(
        {
            "id": engagement.id,
            "customer_id": engagement.customer_id,
            "name": engagement.name,
            "currency": engagement.currency,
            "status": engagement.status,
            "version": engagement.version,
            "created_at": iso(engagement.created_at),
        }
    )
