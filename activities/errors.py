"""Which activity errors are permanent: a worker interceptor that makes them non-retryable.

Retrying cannot fix bad data, a broken integrity rule, a number out of range or a missing row,
so such an error ends the attempt series at once (and the workflow's way out records the run as
``failed``); a lost connection or a locked database is transient and retried on a bounded
schedule. One place decides, for every activity.
"""

from typing import Any

from sqlalchemy import exc as sa_exc
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workflows.activity_calls import PERMANENT

PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.IntegrityError,
    sa_exc.DataError,
    sa_exc.ProgrammingError,
    sa_exc.NoResultFound,
    sa_exc.MultipleResultsFound,
    OverflowError,
    ArithmeticError,
    ValueError,
    KeyError,
    TypeError,
    AssertionError,
)


def is_permanent(err: BaseException) -> bool:
    if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
        return False
    return isinstance(err, PERMANENT_ERRORS)


class PermanentErrors(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Classify(next)


class _Classify(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except ApplicationError:
            raise
        except Exception as err:
            if not is_permanent(err):
                raise
            raise ApplicationError(
                f"{type(err).__name__}: {str(err)[:500]}", type=PERMANENT, non_retryable=True
            ) from err
