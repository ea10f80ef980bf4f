"""An operation described once: the request it sends and how its answer is read (a ``Call``).
``Tollgate`` sends calls over a blocking transport, ``AsyncTollgate`` over an async one; the
``operation`` descriptor gives both the same typed methods."""

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from tollgate_client.problems import raise_for_problem

if TYPE_CHECKING:
    from tollgate_client.clients import AsyncTollgate, Tollgate

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")

MAX_PAGE = 200  # the API's largest page


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reader of its 2xx answer (any other answer raises ``ProblemError``)."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    files: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, base_url: str, token: str | None) -> dict[str, Any]:
        """``httpx`` ``request()`` arguments; query parameters left ``None`` are not sent."""
        headers = {"Accept": "application/json", **self.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = {k: v for k, v in self.params.items() if v is not None}
        return {
            "method": self.method,
            "url": base_url + self.path,
            "params": params,
            "json": self.json,
            "files": self.files,
            "data": self.data,
            "headers": headers,
        }

    def answer(self, response: httpx.Response) -> T:
        raise_for_problem(response)
        return self.read(response)


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    """Read the body into ``kind``: a key the model does not declare fails, as the API's own
    models refuse it, so the client notices a drifted contract."""
    return lambda response: kind.model_validate_json(response.content)


def content(response: httpx.Response) -> bytes:
    return response.content


def nothing(_: httpx.Response) -> None:
    return None


def segment(value: str) -> str:
    """An id as one path segment (run ids hold ``:``, which a path may carry as it is)."""
    return quote(value, safe=":")


def given(**fields: Any) -> dict[str, Any]:
    """A JSON body of the fields given (``None`` leaves a field to the API's default)."""
    return {k: v for k, v in fields.items() if v is not None}


class operation(Generic[P, T]):
    """A method that describes its ``Call``; on a client it becomes the method that sends it:
    returning ``T`` on ``Tollgate``, an awaitable of ``T`` on ``AsyncTollgate``."""

    def __init__(self, describe: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.describe = describe
        self.__name__, self.__doc__ = describe.__name__, describe.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> "operation[P, T]": ...
    @overload
    def __get__(self, client: "Tollgate", owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: "AsyncTollgate", owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        describe = self.describe

        @functools.wraps(describe)
        def send(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client.send(describe(client, *args, **kwargs))

        return send
