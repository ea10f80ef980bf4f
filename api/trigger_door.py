"""The last step every trigger door shares (bearer API, signed webhook, signed URL): accept the
trigger through ``services.triggers`` and start its run, answering 503 if Temporal is away.

A 503 changes nothing the caller must undo: the trigger is recorded and the reconciler starts its
run; a retry with the same idempotency key replays the answer.
"""

from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError

from api.problems import Problem, temporal_unreachable
from services.callers import Caller
from services.runs import start_run
from services.triggers import Accepted, accept_trigger


async def accept_and_start(
    session: Session,
    caller: Caller,
    milestone_id: str,
    key: str,
    data: dict[str, Any],
    temporal: Client,
    task_queue: str,
) -> Accepted:
    accepted: Accepted = await run_in_threadpool(
        accept_trigger, session, caller, milestone_id, key, data
    )
    try:
        await start_run(temporal, task_queue, accepted.run)
    except (RPCError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not temporal_unreachable(exc):
            raise
        raise Problem(
            503,
            "temporal-unavailable",
            "Run not started yet",
            "The trigger is recorded and its run will be started as soon as Temporal is "
            "reachable; retrying with the same idempotency key is safe.",
        ) from exc
    return accepted
