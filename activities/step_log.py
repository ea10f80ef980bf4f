"""The worker's account of what it does: a log line as each activity attempt starts and one as it
ends, with its run, attempt, outcome and duration.

The attempt's ids are bound to structlog's context variables while it runs (the SDK copies them
into the thread a synchronous activity runs on), so anything logged inside carries them too.
"""

import asyncio
import time
from enum import StrEnum
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

# Workflow ids that start ``<kind>:<engagement id>:`` (services/runs.py, closeouts, change orders).
NAMES_ITS_ENGAGEMENT = ("milestone", "closeout", "change-order")


class Outcome(StrEnum):
    OK = "ok"
    RETRY = "retry"  # failed, and Temporal will try again
    FAILED = "failed"  # failed for good: non-retryable, or the last attempt
    CANCELLED = "cancelled"


def run_fields(workflow_id: str) -> dict[str, str]:
    """``run_id`` (the workflow id: a Tollgate run's id) and, for ids that name it,
    ``engagement_id``."""
    fields = {"run_id": workflow_id}
    kind, _, rest = workflow_id.partition(":")
    if kind in NAMES_ITS_ENGAGEMENT and rest:
        fields["engagement_id"] = rest.split(":")[0]
    return fields


def outcome_of(err: BaseException, info: activity.Info) -> Outcome:
    """What Temporal does next with a failed attempt, read as its retry policy reads it."""
    if isinstance(err, asyncio.CancelledError | CancelledError):
        return Outcome.CANCELLED
    if isinstance(err, ApplicationError) and err.non_retryable:
        return Outcome.FAILED
    policy = info.retry_policy
    if policy is None:
        return Outcome.RETRY
    if error_type(err) in (policy.non_retryable_error_types or ()):
        return Outcome.FAILED
    if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return Outcome.FAILED
    return Outcome.RETRY


def error_type(err: BaseException) -> str:
    """The type a retry policy matches: an ApplicationError's own, else the class name."""
    if isinstance(err, ApplicationError) and err.type:
        return err.type
    return type(err).__name__


class StepLog(Interceptor):
    """Logs every activity attempt. Put it outside ``PermanentErrors`` in a worker's
    interceptors, so it sees the error that interceptor makes of a permanent one."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogAttempt(next)


class _LogAttempt(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        log = structlog.stdlib.get_logger("tollgate.worker")  # as configured now, not at import
        ids: dict[str, Any] = {"activity": info.activity_type, "attempt": info.attempt}
        if info.workflow_id:
            ids |= {"workflow_id": info.workflow_id, **run_fields(info.workflow_id)}
        with structlog.contextvars.bound_contextvars(**ids):
            log.info("activity started", workflow_type=info.workflow_type)
            started = time.perf_counter()
            try:
                result = await self.next.execute_activity(input)
            except BaseException as err:
                outcome = outcome_of(err, info)
                (log.error if outcome is Outcome.FAILED else log.warning)(
                    "activity ended",
                    outcome=outcome.value,
                    duration_ms=_since(started),
                    error_type=error_type(err),
                    error=(err.message if isinstance(err, FailureError) else str(err))[:500],
                )
                raise
            log.info("activity ended", outcome=Outcome.OK.value, duration_ms=_since(started))
            return result


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
