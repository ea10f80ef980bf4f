"""Refusals as the client raises them: every non-2xx answer is a ``ProblemError`` carrying the
RFC 9457 problem details the API sent (or, from something in front of the API that answered
in another shape, the status and the first words of the body)."""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class FieldError(BaseModel):
    """One field refused in a 422 and why."""

    field: str
    message: str


class Problem(BaseModel):
    """The API's one error body (``application/problem+json``, docs/api.md)."""

    model_config = ConfigDict(extra="allow")  # RFC 9457 lets a problem carry extension members

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] | None = Field(default=None)


class ProblemError(Exception):
    """A request the API refused or failed: ``problem`` says why, ``retry_after`` (seconds, from
    the ``Retry-After`` header of a 503 or 429) says when to try again, if it said."""

    def __init__(self, problem: Problem, retry_after: float | None = None) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}".rstrip(": "))
        self.problem = problem
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def errors(self) -> list[FieldError]:
        return self.problem.errors or []


def raise_for_problem(response: httpx.Response) -> None:
    """Nothing for a 2xx; ``ProblemError`` for anything else."""
    if response.is_success:
        return
    raise ProblemError(problem_of(response), retry_after(response))


def problem_of(response: httpx.Response) -> Problem:
    try:
        problem = Problem.model_validate_json(response.content)
    except ValidationError:
        return Problem(
            title=response.reason_phrase or f"HTTP {response.status_code}",
            status=response.status_code,
            detail=response.text[:300],
        )
    return problem


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds, or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
