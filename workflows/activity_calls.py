"""How every workflow calls its activities: by name, with a readable summary for the Temporal UI,
a short attempt timeout (database work takes milliseconds; a killed worker's attempt is retried
after it), and retries that are bounded and stop at errors retrying can't fix.

Retries by kind: an activity raises its business errors, and every permanent error (bad data,
integrity, overflow, not found — see ``activities/errors.py``), as non-retryable; anything else is
treated as transient and retried with exponential back-off for about twenty minutes, after which
the workflow's way out ends the run ``failed`` with the reason.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

# (activity name, argument or None for none, result type, summary) → result
ActivityCall = Callable[[str, Any, type | None, str], Awaitable[Any]]

PERMANENT = "PermanentError"
ATTEMPT_TIMEOUT = timedelta(seconds=15)
# 1 + 2 + 4 + … + 60 s: about twenty minutes of a database or network outage is ridden out.
TRANSIENT_ATTEMPTS = 25
# The way out itself (recording a run's end) is more patient: about forty-five minutes.
WAY_OUT_ATTEMPTS = 50


def activity_caller(
    *business_errors: str,
    maximum_attempts: int = TRANSIENT_ATTEMPTS,
    attempt_timeout: timedelta = ATTEMPT_TIMEOUT,
) -> ActivityCall:
    """A caller whose retries stop at ``business_errors`` and permanent errors, or after
    ``maximum_attempts``; ``attempt_timeout`` for activities that do more than database work."""
    retry = RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=maximum_attempts,
        non_retryable_error_types=[*business_errors, PERMANENT],
    )

    async def call(name: str, arg: Any, result_type: type | None, summary: str) -> Any:
        return await workflow.execute_activity(
            name,
            args=[] if arg is None else [arg],
            result_type=result_type,
            start_to_close_timeout=attempt_timeout,
            retry_policy=retry,
            summary=summary,
        )

    return call


def way_out_caller() -> ActivityCall:
    return activity_caller(maximum_attempts=WAY_OUT_ATTEMPTS)
