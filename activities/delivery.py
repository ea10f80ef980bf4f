"""Delivery as activities: one attempt at a notification, and the sweep that starts deliveries
a lost start left behind. ``Notifier`` is how the other activities queue notices and start
their delivery once the transaction that wrote them has committed."""

import asyncio
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from services.delivery import DeliveryConfig, deliver, start_deliveries, sweep
from services.notices import LinkSigning, Notice, Recipient, queue
from workflows.delivery import Attempted

# How long an activity waits for Temporal to accept the delivery workflows it starts.
START_TIMEOUT_SECONDS = 10


class Notifier:
    """Queues notices in an activity's transaction; ``started`` hands their rows to delivery.

    Without a client (tests of single activities, a worker built without settings) the rows are
    only written, and the sweep starts their delivery."""

    def __init__(
        self,
        links: LinkSigning | None = None,
        client: Client | None = None,
        task_queue: str = "",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.links, self._client, self._task_queue, self._loop = links, client, task_queue, loop

    def queue(
        self, session: Session, notice: Notice, to: list[Recipient], *, operators: bool = False
    ) -> list[int]:
        return queue(session, notice, to, self.links, operators=operators)

    def started(self, ids: list[int]) -> None:
        """Start delivering rows that are committed; called from an activity's worker thread."""
        if not ids or self._client is None or self._loop is None:
            return
        starting = start_deliveries(self._client, self._task_queue, ids)
        try:
            asyncio.run_coroutine_threadsafe(starting, self._loop).result(START_TIMEOUT_SECONDS)
        except (RPCError, TimeoutError, RuntimeError) as exc:
            # The rows are committed: the sweep starts them once Temporal answers again.
            activity.logger.warning("delivery of %s left to the sweep: %s", ids, exc)


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
