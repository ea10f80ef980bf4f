"""Sending notifications: one attempt at a time, each recorded, with bounded exponential back-off.

Emails go over SMTP (``aiosmtplib``); webhooks are POSTed with ``httpx`` and signed per the
Standard Webhooks spec (``standardwebhooks``), with the row's ``message_id`` as ``webhook-id`` so
a receiver can drop the duplicates that at-least-once delivery implies.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum

import aiosmtplib
import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from config import Settings
from db.models import Notification, NotificationAttempt, WebhookEndpoint
from domain.times import iso
from services.errors import Problem, not_found
from services.notice_content import Channel
from services.webhook_targets import TargetRefused, TargetUnresolved, resolve
from workflows.delivery import Attempted, DeliverNotification, delivery_workflow_id

# Error texts kept per attempt and on the row: enough to diagnose, bounded in size.
MAX_ERROR_CHARS = 1000


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class DeliveryConfig:
    smtp_host: str
    smtp_port: int
    smtp_tls: str  # none | starttls | tls
    smtp_user: str
    smtp_password: str
    smtp_from: str
    operators_email: str
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    webhook_allow_private: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeliveryConfig":
        return cls(
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_tls=settings.smtp_tls,
            smtp_user=settings.smtp_user,
            smtp_password=settings.smtp_password,
            smtp_from=settings.smtp_from,
            operators_email=settings.operators_email,
            max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            timeout_seconds=settings.delivery_timeout_seconds,
            webhook_allow_private=settings.webhook_allow_private,
        )

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait after the n-th failed attempt: doubling, capped."""
        return min(self.backoff_seconds * 2 ** (failed_attempts - 1), self.backoff_max_seconds)


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends, read from the row before the network is touched."""

    id: int
    channel: str
    kind: str
    address: str | None
    subject: str
    body_text: str
    body_html: str
    message_id: str
    created_at: datetime
    payload: dict
    secret: str | None


@dataclass(frozen=True)
class Sent:
    ok: bool
    response_code: int | None = None
    error: str | None = None
    # Retrying cannot help (no address, the endpoint is gone): the notification is dead at once.
    permanent: bool = False


async def deliver(
    sessions: sessionmaker[Session], notification_id: int, config: DeliveryConfig
) -> Attempted:
    """One attempt at a pending notification that is due, recorded; a delivered or dead one is
    left alone, and one still in its back-off answers how long is left."""
    outgoing, state = await asyncio.to_thread(_load, sessions, notification_id)
    if outgoing is None:
        return state
    started = time.perf_counter()
    sent = await _send(outgoing, config)
    duration_ms = round((time.perf_counter() - started) * 1000)
    return await asyncio.to_thread(_record, sessions, notification_id, sent, duration_ms, config)


def _load(
    sessions: sessionmaker[Session], notification_id: int
) -> tuple[Outgoing | None, Attempted]:
    with sessions() as session:
        row = session.get(Notification, notification_id)
        if row is None:
            raise LookupError(f"notification {notification_id} is not recorded")
        state = Attempted(row.status, row.attempts)
        if row.status != DeliveryStatus.PENDING:
            return None, state
        wait = (row.next_attempt_at - datetime.now(UTC)).total_seconds()
        if wait > 0:  # its back-off is not over (a first attempt failed): not yet
            return None, Attempted(row.status, row.attempts, wait)
        webhook = row.channel == Channel.WEBHOOK
        endpoint = session.get(WebhookEndpoint, row.recipient_id) if webhook else None
        return Outgoing(
            id=row.id,
            channel=row.channel,
            kind=row.kind,
            address=row.address,
            subject=row.subject,
            body_text=row.body_text,
            body_html=row.body_html,
            message_id=row.message_id,
            created_at=row.created_at,
            payload=row.payload,
            secret=endpoint.secret if endpoint else None,
        ), state


async def _send(outgoing: Outgoing, config: DeliveryConfig) -> Sent:
    try:
        if outgoing.channel == Channel.WEBHOOK:
            return await post_webhook(outgoing, config)
        return await send_email(outgoing, config)
    except (OSError, aiosmtplib.SMTPException, httpx.HTTPError, TimeoutError) as exc:
        return Sent(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])


async def send_email(outgoing: Outgoing, config: DeliveryConfig) -> Sent:
    address = outgoing.address or config.operators_email
    if not address:
        error = "no address: set TOLLGATE_OPERATORS_EMAIL for operators' notices"
        return Sent(False, error=error, permanent=True)
    message = EmailMessage()
    message["Subject"] = outgoing.subject
    message["From"] = config.smtp_from
    message["To"] = address
    message["Message-ID"] = f"<{outgoing.message_id}@tollgate>"
    message.set_content(outgoing.body_text)
    message.add_alternative(outgoing.body_html, subtype="html")
    errors, _reply = await aiosmtplib.send(
        message,
        hostname=config.smtp_host,
        port=config.smtp_port,
        username=config.smtp_user or None,
        password=config.smtp_password or None,
        use_tls=config.smtp_tls == "tls",
        start_tls=config.smtp_tls == "starttls",
        timeout=config.timeout_seconds,
    )
    if errors:
        return Sent(False, error=f"refused: {errors}"[:MAX_ERROR_CHARS])
    return Sent(True, response_code=250, error=None)


def webhook_body(outgoing: Outgoing) -> str:
    """The Standard Webhooks payload shape: the same bytes on every retry."""
    envelope = {
        "type": outgoing.kind,
        "timestamp": iso(outgoing.created_at),
        "data": outgoing.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


async def post_webhook(outgoing: Outgoing, config: DeliveryConfig) -> Sent:
    """Post to the address checked just now (``services.webhook_targets``): a URL that may not
    receive webhooks is a permanent failure, a host DNS cannot find now a retryable one."""
    if outgoing.secret is None or outgoing.address is None:
        return Sent(False, error="the webhook endpoint no longer exists", permanent=True)
    try:
        target = await resolve(outgoing.address, allow_private=config.webhook_allow_private)
    except TargetRefused as exc:
        return Sent(False, error=f"refused: {exc}"[:MAX_ERROR_CHARS], permanent=True)
    except TargetUnresolved as exc:
        return Sent(False, error=str(exc)[:MAX_ERROR_CHARS])
    body = webhook_body(outgoing)
    now = datetime.now(UTC)
    signature = Webhook(outgoing.secret).sign(outgoing.message_id, now, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": outgoing.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    # Never follow a redirect: it could point anywhere, past the check above.
    async with httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False) as http:
        response = await http.post(
            target.url,
            content=body.encode(),
            headers={**headers, **target.headers},
            extensions=target.extensions,
        )
    if response.is_success:
        return Sent(True, response_code=response.status_code)
    return Sent(
        False,
        response_code=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:200]}",
    )


def _record(
    sessions: sessionmaker[Session],
    notification_id: int,
    sent: Sent,
    duration_ms: int,
    config: DeliveryConfig,
) -> Attempted:
    now = datetime.now(UTC)
    with sessions.begin() as session:
        row = session.scalars(
            select(Notification).where(Notification.id == notification_id).with_for_update()
        ).one()
        session.add(
            NotificationAttempt(
                notification_id=row.id,
                at=now,
                outcome="delivered" if sent.ok else "failed",
                response_code=sent.response_code,
                error=sent.error,
                duration_ms=duration_ms,
            )
        )
        row.attempts += 1
        row.last_error = sent.error
        retry_in = 0.0
        if sent.ok:
            row.status, row.delivered_at = DeliveryStatus.DELIVERED, now
        elif sent.permanent or row.attempts >= config.max_attempts:
            row.status = DeliveryStatus.DEAD
        else:
            retry_in = config.backoff(row.attempts)
            row.next_attempt_at = now + timedelta(seconds=retry_in)
        return Attempted(row.status, row.attempts, retry_in)


def redeliver(session: Session, notification_id: int) -> Notification:
    """Queue a dead notification again, with a fresh budget of attempts (its history stays)."""
    row = session.get(Notification, notification_id)
    if row is None:
        raise not_found("Notification", str(notification_id))
    if row.status != DeliveryStatus.DEAD:
        raise Problem(
            409,
            "notification-not-dead",
            "Only a dead notification can be redelivered",
            f"Notification {notification_id} is {row.status}.",
        )
    row.status, row.attempts, row.next_attempt_at = DeliveryStatus.PENDING, 0, datetime.now(UTC)
    return row


async def start_deliveries(client: Client, task_queue: str, ids: list[int]) -> None:
    """Start (or find running) the delivery workflow of each row."""
    for notification_id in ids:
        await client.start_workflow(
            DeliverNotification.run,
            notification_id,
            id=delivery_workflow_id(task_queue, notification_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"deliver notification {notification_id}",
        )


def pending_ids(
    sessions: sessionmaker[Session], older_than: timedelta, limit: int = 500
) -> list[int]:
    """Pending rows written before ``older_than`` ago: their workflow may never have started."""
    cutoff = datetime.now(UTC) - older_than
    with sessions() as session:
        return list(
            session.scalars(
                select(Notification.id)
                .where(
                    Notification.status == DeliveryStatus.PENDING, Notification.created_at <= cutoff
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        )


async def sweep(
    sessions: sessionmaker[Session],
    client: Client,
    task_queue: str,
    older_than: timedelta = timedelta(seconds=30),
) -> list[int]:
    """Start the delivery of every pending row whose workflow is not running (the safety net
    for a start that was lost between the commit and Temporal). Returns the ids swept."""
    ids = await asyncio.to_thread(pending_ids, sessions, older_than)
    await start_deliveries(client, task_queue, ids)
    return ids
