"""A typed Python client of the Tollgate API, built on the API's own response models
(``api.models``): ``Tollgate`` (blocking) and ``AsyncTollgate`` (async) send the same operations;
every refusal raises ``ProblemError`` carrying the problem details.

    with Tollgate("http://127.0.0.1:8000", token) as tollgate:
        run = tollgate.get_run(run_id)  # a RunStatus
"""

from tollgate_client.calls import MAX_PAGE, Call
from tollgate_client.clients import AsyncTollgate, Tollgate
from tollgate_client.problems import FieldError, Problem, ProblemError

__all__ = [
    "MAX_PAGE",
    "AsyncTollgate",
    "Call",
    "FieldError",
    "Problem",
    "ProblemError",
    "Tollgate",
]
