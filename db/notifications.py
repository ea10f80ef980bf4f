"""Notices in the outbox, each delivery attempt, and the webhook endpoints they go to."""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, new_id
from db.types import utcnow


class Notification(Base):
    """One notice to one recipient (an email address or a webhook endpoint), written in the
    transaction of the state change it tells about and delivered by ``DeliverNotification``.

    ``run_id`` names what the notice is about (a run, or an invoice or credit note); ``kind`` is
    the event (``approval_requested``, ``reminder``, …, see ``services.notices.NoticeKind``).
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (UniqueConstraint("run_id", "kind", "role", "recipient_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(120), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(100))
    # A principal's id, a webhook endpoint's id, or "operators".
    recipient_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    # pending → delivered | dead (services.delivery.DeliveryStatus)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16), default="email")  # email | webhook
    # The email address or the endpoint's URL; NULL for operators (read from settings).
    address: Mapped[str | None] = mapped_column(String(2048))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # The Standard Webhooks ``webhook-id`` (and the email's Message-ID): stable across retries.
    message_id: Mapped[str] = mapped_column(String(64), default=lambda: new_id("msg"), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()


class NotificationAttempt(Base):
    """One try at delivering a notification: what happened and how long it took."""

    __tablename__ = "notification_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification_outbox.id"), index=True)
    at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """Where an engagement's or a customer's events are posted, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str | None] = mapped_column(ForeignKey("engagements.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column()
    # Kept as given (``whsec_…``): signing needs the secret itself, not a hash of it.
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
