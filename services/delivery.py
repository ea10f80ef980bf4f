"""Delivering notifications: attempts recorded one by one, with bounded exponential back-off
(what an attempt sends is ``services/senders.py``)."""

import asyncio
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from db.models import Notification, NotificationAttempt, WebhookEndpoint
from services.errors import Problem, not_found
from services.notice_content import Channel
from services.senders import Attempt, DeliveryConfig, Outgoing, send_all
from workflows.delivery import Attempted, DeliverNotification, delivery_workflow_id


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


async def deliver(
    sessions: sessionmaker[Session], notification_id: int, config: DeliveryConfig
) -> Attempted:
    """One attempt at a pending notification that is due, recorded; a delivered or dead one is
    left alone, and one still in its back-off answers how long is left."""
    return (await deliver_all(sessions, [notification_id], config))[notification_id]


async def deliver_all(
    sessions: sessionmaker[Session], ids: list[int], config: DeliveryConfig
) -> dict[int, Attempted]:
    """``deliver`` for rows written together (one activity's notices): read in one session,
    the emails sent over one SMTP connection, the attempts recorded in one transaction."""
    outgoing, states = await asyncio.to_thread(_load, sessions, ids)
    if not outgoing:
        return states
    attempts = await send_all(outgoing, config)
    recorded = await asyncio.to_thread(_record, sessions, attempts, config)
    return {**states, **recorded}


def _load(
    sessions: sessionmaker[Session], ids: list[int]
) -> tuple[list[Outgoing], dict[int, Attempted]]:
    """The rows due for an attempt, and the state of the others."""
    with sessions() as session:
        query = select(Notification).where(Notification.id.in_(ids))
        rows = {row.id: row for row in session.scalars(query)}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise LookupError(f"notification {missing[0]} is not recorded")
        hooks = [r.recipient_id for r in rows.values() if r.channel == Channel.WEBHOOK]
        secrets: dict[str, str] = {}
        if hooks:
            endpoints = select(WebhookEndpoint.id, WebhookEndpoint.secret)
            found = session.execute(endpoints.where(WebhookEndpoint.id.in_(hooks)))
            secrets = {endpoint_id: secret for endpoint_id, secret in found}
        now = datetime.now(UTC)
        outgoing: list[Outgoing] = []
        states: dict[int, Attempted] = {}
        for row in rows.values():
            wait = (row.next_attempt_at - now).total_seconds()
            if row.status != DeliveryStatus.PENDING:
                states[row.id] = Attempted(row.status, row.attempts)
            elif wait > 0:  # its back-off is not over (a first attempt failed): not yet
                states[row.id] = Attempted(row.status, row.attempts, wait)
            else:
                outgoing.append(_outgoing(row, secrets.get(row.recipient_id)))
        return outgoing, states


def _outgoing(row: Notification, secret: str | None) -> Outgoing:
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
        secret=secret if row.channel == Channel.WEBHOOK else None,
    )


def _record(
    sessions: sessionmaker[Session], attempts: dict[int, Attempt], config: DeliveryConfig
) -> dict[int, Attempted]:
    now = datetime.now(UTC)
    recorded: dict[int, Attempted] = {}
    with sessions.begin() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.id.in_(attempts))
            .order_by(Notification.id)
            .with_for_update()
        )
        for row in rows:
            recorded[row.id] = _recorded(session, row, attempts[row.id], config, now)
    return recorded


def _recorded(
    session: Session, row: Notification, attempt: Attempt, config: DeliveryConfig, now: datetime
) -> Attempted:
    sent = attempt.sent
    session.add(
        NotificationAttempt(
            notification_id=row.id,
            at=now,
            outcome="delivered" if sent.ok else "failed",
            response_code=sent.response_code,
            error=sent.error,
            duration_ms=attempt.duration_ms,
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


async def start_deliveries(
    client: Client, task_queue: str, ids: list[int], *, again: bool = False
) -> None:
    """Start (or find running) the delivery workflow of each row. ``again``: a redelivered row,
    whose earlier workflow gave up; one still finishing is replaced, not joined (joined, it would
    end without another attempt and leave the row to the sweep)."""
    policies = WorkflowIDConflictPolicy
    conflict = policies.TERMINATE_EXISTING if again else policies.USE_EXISTING
    for notification_id in ids:
        await client.start_workflow(
            DeliverNotification.run,
            notification_id,
            id=delivery_workflow_id(task_queue, notification_id),
            task_queue=task_queue,
            id_conflict_policy=conflict,
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
