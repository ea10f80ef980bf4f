"""Delivering one notification whose first attempt failed: a durable back-off, then attempts
until delivered or dead (the first attempt is the worker's own, ``activities/delivery.py``).

One workflow per such outbox row (id ``notify-<task queue>-<row id>``: the task queue names the
deployment, whose database numbers the rows), started by the worker or by the sweep. Each
attempt is an activity that sends once and records the attempt — or, while the row's back-off
is not over, answers how long is left; it decides from the row and the settings whether to
retry and after how long, so the workflow only sleeps and repeats.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import RetryPolicy

from workflows.schedules import put_schedule

WORKFLOW_ID_PREFIX = "notify-"
SWEEP_SCHEDULE_ID = "tollgate-delivery-sweep"
# A row younger than this may still have its delivery on the way from the activity that wrote it.
SWEEP_GRACE_SECONDS = 30


def delivery_workflow_id(task_queue: str, notification_id: int) -> str:
    return f"{WORKFLOW_ID_PREFIX}{task_queue}-{notification_id}"


@dataclass
class Attempted:
    status: str  # pending | delivered | dead
    attempts: int
    retry_in_seconds: float = 0


@workflow.defn
class DeliverNotification:
    @workflow.run
    async def run(self, notification_id: int) -> Attempted:
        while True:
            attempted: Attempted = await workflow.execute_activity(
                "deliver_notification",
                notification_id,
                result_type=Attempted,
                # A send's own failure is an attempt, recorded and answered; only the database
                # being unreachable fails the activity, and that is retried here.
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=1),
                    non_retryable_error_types=["NotificationNotFound"],
                ),
                summary=f"send notification {notification_id}",
            )
            workflow.set_current_details(
                f"notification {notification_id}: {attempted.status} after "
                f"{attempted.attempts} attempt(s)"
            )
            if attempted.status != "pending":
                return attempted
            await workflow.sleep(timedelta(seconds=attempted.retry_in_seconds))


@workflow.defn
class SweepNotifications:
    """Starts the delivery of pending notifications whose workflow never started."""

    @workflow.run
    async def run(self, older_than_seconds: float) -> list[int]:
        return await workflow.execute_activity(
            "sweep_notifications",
            older_than_seconds,
            result_type=list[int],
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="start the delivery of pending notifications",
        )


async def ensure_delivery_sweep_schedule(
    client: Client, task_queue: str, every_seconds: int
) -> None:
    """Create or update the sweep's Schedule; ``every_seconds`` 0 deletes it."""
    schedule = None
    if every_seconds > 0:
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                SweepNotifications.run,
                SWEEP_GRACE_SECONDS,
                id="delivery-sweep",  # Temporal appends the scheduled time
                task_queue=task_queue,
                static_summary="Start the delivery of pending notifications nobody started",
            ),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
    await put_schedule(client, SWEEP_SCHEDULE_ID, schedule)
