"""Outbound notices for admins: webhook endpoints, the notifications and their attempts, and
redelivering a dead one."""

import base64
import binascii
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator
from sqlalchemy import select
from temporalio.service import RPCError

from api.deps import AdminDep, SessionDep, SettingsDep, TemporalDep
from api.models import Notification as NotificationOut
from api.models import NotificationDetail, Page, Redelivery
from api.models import WebhookEndpoint as EndpointOut
from api.problems import invalid, not_found, temporal_unreachable
from api.routes.listings import Cursor, Limit, numbered_page
from db.models import (
    Customer,
    Engagement,
    Notification,
    NotificationAttempt,
    WebhookEndpoint,
    new_id,
)
from domain.times import iso
from services.delivery import DeliveryStatus, redeliver, start_deliveries
from services.notices import NoticeKind
from services.webhook_targets import TargetRefused, TargetUnresolved, resolve

router = APIRouter(tags=["notifications"])
# Outbox row ids: bounded so a huge id is a 422, never a database overflow.
NotificationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SECRET_PREFIX = "whsec_"
# Standard Webhooks: a secret is 24 to 64 random bytes, base64 encoded after "whsec_".
SECRET_BYTES = (24, 64)


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[HttpUrl, Field(max_length=2048)]
    events: Annotated[list[NoticeKind], Field(min_length=1, max_length=len(NoticeKind))]
    secret: Annotated[str, Field(strict=True, max_length=200)] | None = None
    engagement_id: Annotated[str, Field(strict=True, max_length=40)] | None = None
    customer_id: Annotated[str, Field(strict=True, max_length=40)] | None = None

    @model_validator(mode="after")
    def _one_owner(self) -> "WebhookEndpointIn":
        if (self.engagement_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of engagement_id and customer_id")
        return self


def _check_secret(secret: str) -> None:
    try:
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (ValueError, binascii.Error):
        raise invalid("secret", "must be 'whsec_' followed by base64") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise invalid("secret", f"must encode {low} to {high} bytes, not {len(key)}")


@router.post("/v1/webhook-endpoints", status_code=status.HTTP_201_CREATED)
async def create_webhook_endpoint(
    body: WebhookEndpointIn, session: SessionDep, settings: SettingsDep, _: AdminDep
) -> EndpointOut:
    """Register an endpoint for an engagement's or a customer's events. The signing secret is
    in this response only (generated unless given): keep it to verify the signatures. A URL
    whose host is or resolves to a non-public address is refused (see
    ``TOLLGATE_WEBHOOK_ALLOW_PRIVATE``)."""
    try:
        await resolve(str(body.url), allow_private=settings.webhook_allow_private)
    except (TargetRefused, TargetUnresolved) as exc:
        raise invalid("url", str(exc)) from None
    if body.engagement_id is not None and session.get(Engagement, body.engagement_id) is None:
        raise invalid("engagement_id", f"unknown engagement {body.engagement_id!r}")
    if body.customer_id is not None and session.get(Customer, body.customer_id) is None:
        raise invalid("customer_id", f"unknown customer {body.customer_id!r}")
    if body.secret is not None:
        _check_secret(body.secret)
    secret = body.secret or SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        engagement_id=body.engagement_id,
        customer_id=body.customer_id,
        url=str(body.url),
        events=sorted(dict.fromkeys(str(e) for e in body.events)),
        secret=secret,
    )
    session.add(endpoint)
    session.commit()
    return EndpointOut.model_validate(
        {
            "id": endpoint.id,
            "url": endpoint.url,
            "events": endpoint.events,
            "engagement_id": endpoint.engagement_id,
            "customer_id": endpoint.customer_id,
            "active": endpoint.active,
            "secret": secret,
            "created_at": iso(endpoint.created_at),
        }
    )


def _view(row: Notification) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "run_id": row.run_id,
        "channel": row.channel,
        "recipient_id": row.recipient_id,
        "address": row.address,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "message_id": row.message_id,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at),
        "delivered_at": iso(row.delivered_at),
    }


@router.get("/v1/notifications")
def list_notifications(
    session: SessionDep,
    _: AdminDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    run_id: Annotated[str | None, Query(max_length=120)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[NotificationOut]:
    """Notifications, oldest first."""
    query = select(Notification)
    if status_ is not None:
        query = query.where(Notification.status == status_)
    if run_id is not None:
        query = query.where(Notification.run_id == run_id)
    rows, next_cursor = numbered_page(session, query, Notification.id, cursor, limit)
    return Page[NotificationOut](items=[_view(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/notifications/{notification_id}")
def get_notification(
    notification_id: NotificationId, session: SessionDep, _: AdminDep
) -> NotificationDetail:
    """One notification with every attempt at delivering it."""
    row = session.get(Notification, notification_id)
    if row is None:
        raise not_found("Notification", str(notification_id))
    attempts = session.scalars(
        select(NotificationAttempt)
        .where(NotificationAttempt.notification_id == row.id)
        .order_by(NotificationAttempt.id)
    ).all()
    return NotificationDetail.model_validate(
        {
            **_view(row),
            "attempt_log": [
                {
                    "at": iso(a.at),
                    "outcome": a.outcome,
                    "response_code": a.response_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in attempts
            ],
        }
    )


@router.post("/v1/notifications/{notification_id}/redeliver", status_code=status.HTTP_202_ACCEPTED)
async def redeliver_notification(
    notification_id: NotificationId,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    _: AdminDep,
) -> Redelivery:
    """Queue a dead notification again with a fresh set of attempts (409 unless it is dead).
    Its delivery starts now, or with the sweep if Temporal cannot be reached."""
    row = redeliver(session, notification_id)
    session.commit()
    view = _view(row)
    try:
        await start_deliveries(temporal, settings.task_queue, [notification_id], again=True)
    except (RPCError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not temporal_unreachable(exc):
            raise
        return Redelivery.model_validate(
            {**view, "delivery": "queued for the sweep: Temporal is unreachable"}
        )
    return Redelivery.model_validate({**view, "delivery": "started"})
