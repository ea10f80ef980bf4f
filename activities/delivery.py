"""Delivery as activities: one attempt at a notification, and the sweep that starts deliveries
a lost start left behind. ``Notifier`` is how the other activities queue notices and send them
once the transaction that wrote them has committed."""

import asyncio
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from services.delivery import DeliveryStatus, deliver, deliver_all, start_deliveries, sweep
from services.notices import LinkSigning, Notice, Recipient, queue
from services.senders import DeliveryConfig
from workflows.delivery import Attempted

log = logging.getLogger(__name__)


@dataclass
class FirstAttempts:
    """Where ``Notifier.started`` sends from: the worker's loop, database and settings."""

    sessions: sessionmaker[Session]
    config: DeliveryConfig
    client: Client
    task_queue: str
    loop: asyncio.AbstractEventLoop


class Notifier:
    """Queues notices in an activity's transaction; ``started`` sends their committed rows.

    The rows' first attempts are made at once on the worker's event loop (together: one
    session, one SMTP connection, one transaction to record them), not by a workflow of
    their own: most notices go through on the first try, and a workflow per notice was most of
    the Temporal work a billed run cost. A row whose first attempt fails gets its
    ``DeliverNotification`` workflow, which waits out the back-off and tries again; a row whose
    attempt never finished (the worker stopped) is found by the sweep, so each is still sent
    at least once. The activity does not wait for the send.

    Without ``sending`` (tests of single activities, a worker built without settings) the rows
    are only written, and the sweep starts their delivery."""

    def __init__(self, links: LinkSigning | None = None, sending: FirstAttempts | None = None):
        self.links, self._sending = links, sending
        self._in_flight: set[Future[None]] = set()

    def queue(
        self, session: Session, notice: Notice, to: list[Recipient], *, operators: bool = False
    ) -> list[int]:
        return queue(session, notice, to, self.links, operators=operators)

    def started(self, ids: list[int]) -> None:
        """Send rows that are committed; called from an activity's worker thread."""
        if not ids or self._sending is None:
            return
        sending = asyncio.run_coroutine_threadsafe(self._first_attempts(ids), self._sending.loop)
        self._in_flight.add(sending)
        sending.add_done_callback(self._in_flight.discard)

    async def _first_attempts(self, ids: list[int]) -> None:
        sending = self._sending
        assert sending is not None
        try:
            attempted = await deliver_all(sending.sessions, ids, sending.config)
            retry = [i for i, a in attempted.items() if a.status == DeliveryStatus.PENDING]
            if retry:
                await start_deliveries(sending.client, sending.task_queue, retry)
        except Exception as exc:  # the rows are committed: the sweep finds them
            log.warning("notifications %s left to the sweep: %r", ids, exc)


class DeliveryActivities:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: DeliveryConfig,
        client: Client,
        task_queue: str,
    ) -> None:
        self._sessions, self._config = sessions, config
        self._client, self._task_queue = client, task_queue

    @activity.defn(name="deliver_notification")
    async def deliver_notification(self, notification_id: int) -> Attempted:
        try:
            attempted = await deliver(self._sessions, notification_id, self._config)
        except LookupError as exc:
            raise ApplicationError(
                str(exc), type="NotificationNotFound", non_retryable=True
            ) from exc
        activity.logger.info(
            "notification %s: %s after %s attempt(s)",
            notification_id,
            attempted.status,
            attempted.attempts,
        )
        return attempted

    @activity.defn(name="sweep_notifications")
    async def sweep_notifications(self, older_than_seconds: float) -> list[int]:
        swept = await sweep(
            self._sessions, self._client, self._task_queue, timedelta(seconds=older_than_seconds)
        )
        activity.logger.info("started the delivery of %s pending notification(s)", len(swept))
        return swept

    def all(self) -> list:
        return [self.deliver_notification, self.sweep_notifications]
