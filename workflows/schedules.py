"""The Temporal Schedule that finalizes every non-empty draft on a cadence (monthly by default).

Client-side code: run by ``tollgate dev`` and ``tollgate worker`` at start, so the Schedule
always carries the current cron, task queue and issuer prefix. Several workers starting at once
are fine: whoever loses the creation race updates the same Schedule.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.invoicing import FINALIZE_DRAFTS_SCHEDULE_ID, FinalizeDrafts, FinalizeDraftsInput


def finalize_schedule(
    task_queue: str, cron: str, issuer_prefix: str, time_zone: str = "UTC"
) -> Schedule:
    """The Schedule reads `cron` in `time_zone`; its run finalizes each draft once that draft's
    own calendar has reached the same local date (so set the zone to the easternmost calendar's
    to finalize every draft at its own local midnight)."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"TOLLGATE_FINALIZE_TIMEZONE must be an IANA time zone like 'America/New_York', "
            f"got {time_zone!r}"
        ) from exc
    return Schedule(
        action=ScheduleActionStartWorkflow(
            FinalizeDrafts.run,
            FinalizeDraftsInput(issuer_prefix=issuer_prefix, time_zone=time_zone),
            id="finalize-drafts",  # Temporal appends the scheduled time
            task_queue=task_queue,
            static_summary="Finalize every draft invoice that has lines",
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=time_zone),
        # A batch still running when the next is due has the same drafts to do: skip it.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"finalize non-empty drafts, cron {cron!r} ({time_zone})"),
    )


async def ensure_finalize_schedule(
    client: Client,
    task_queue: str,
    cron: str,
    issuer_prefix: str,
    *,
    time_zone: str = "UTC",
    schedule_id: str = FINALIZE_DRAFTS_SCHEDULE_ID,
) -> ScheduleHandle | None:
    """Create or update the Schedule; an empty `cron` deletes it (finalizing by hand only)."""
    schedule = finalize_schedule(task_queue, cron, issuer_prefix, time_zone) if cron else None
    return await put_schedule(client, schedule_id, schedule)


async def put_schedule(
    client: Client, schedule_id: str, schedule: Schedule | None
) -> ScheduleHandle | None:
    """Create the Schedule, or update it to ``schedule`` if it exists; ``None`` deletes it.

    Several workers starting at once are fine: whoever loses the creation race updates."""
    handle = client.get_schedule_handle(schedule_id)
    if schedule is None:
        try:
            await handle.delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        return None
    try:
        return await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return handle
