"""How every workflow calls its activities: by name, with a readable summary for the Temporal UI,
a one-minute attempt timeout, and retries that stop at the workflow's business errors."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

# (activity name, argument or None for none, result type, summary) → result
ActivityCall = Callable[[str, Any, type | None, str], Awaitable[Any]]


def activity_caller(*business_errors: str) -> ActivityCall:
    """A caller whose retries stop at ``business_errors``: errors that retrying cannot fix, which
    the activities raise as non-retryable ApplicationErrors of those types."""
    retry = RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=list(business_errors),
    )

    async def call(name: str, arg: Any, result_type: type | None, summary: str) -> Any:
        return await workflow.execute_activity(
            name,
            args=[] if arg is None else [arg],
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=retry,
            summary=summary,
        )

    return call
