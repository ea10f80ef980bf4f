"""The two clients: the same typed operations, sent over a blocking or an async ``httpx``
client. Every list answers a ``Page``; ``pages()`` and ``items()`` follow its ``next_cursor``."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from api.models import Page
from tollgate_client.billing_ops import BillingOperations
from tollgate_client.calls import MAX_PAGE, Call
from tollgate_client.notice_ops import NoticeOperations
from tollgate_client.run_ops import RunOperations
from tollgate_client.setup_ops import SetupOperations

T = TypeVar("T")
Item = TypeVar("Item", bound=BaseModel)
DEFAULT_TIMEOUT = 30.0


class Operations(SetupOperations, RunOperations, BillingOperations, NoticeOperations):
    """Every operation, described once; each client sends them its own way."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token


class Tollgate(Operations):
    """The blocking client (``with Tollgate(url, token) as tollgate: tollgate.get_run(…)``).
    A non-2xx answer raises ``ProblemError``; a network failure raises ``httpx.HTTPError``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, token)
        self._owned = http is None
        self.http = http or httpx.Client(timeout=timeout)

    def send(self, call: Call[T]) -> T:
        return call.answer(self.http.request(**call.request(self.base_url, self.token)))

    def with_token(self, token: str) -> "Tollgate":
        """The same connection, acting as another principal (an approver, say)."""
        return Tollgate(self.base_url, token, http=self.http)

    def pages(
        self,
        list_call: Callable[..., Page[Item]],
        /,
        *args: Any,
        limit: int | None = None,
        page_size: int = MAX_PAGE,
        **params: Any,
    ) -> Iterator[Page[Item]]:
        """Each page of a list (``tollgate.pages(tollgate.list_runs, stage="billed")``), of up
        to ``page_size`` items, until the last, or until ``limit`` items in all (the last page's
        ``next_cursor`` then goes on from there)."""
        cursor, taken = params.pop("cursor", None), 0
        while limit is None or taken < limit:
            size = page_size if limit is None else min(limit - taken, page_size)
            page = list_call(*args, cursor=cursor, limit=size, **params)
            yield page
            taken, cursor = taken + len(page.items), page.next_cursor
            if cursor is None:
                return

    def items(
        self,
        list_call: Callable[..., Page[Item]],
        /,
        *args: Any,
        limit: int | None = None,
        page_size: int = MAX_PAGE,
        **params: Any,
    ) -> Iterator[Item]:
        for page in self.pages(list_call, *args, limit=limit, page_size=page_size, **params):
            yield from page.items

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTollgate(Operations):
    """The async client: the same methods, awaited (``await tollgate.get_run(…)``)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, token)
        self._owned = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout)

    async def send(self, call: Call[T]) -> T:
        return call.answer(await self.http.request(**call.request(self.base_url, self.token)))

    def with_token(self, token: str) -> "AsyncTollgate":
        """The same connection, acting as another principal (an approver, say)."""
        return AsyncTollgate(self.base_url, token, http=self.http)

    async def pages(
        self,
        list_call: Callable[..., Awaitable[Page[Item]]],
        /,
        *args: Any,
        limit: int | None = None,
        page_size: int = MAX_PAGE,
        **params: Any,
    ) -> AsyncIterator[Page[Item]]:
        """``async for page in tollgate.pages(tollgate.list_runs, stage="billed")``."""
        cursor, taken = params.pop("cursor", None), 0
        while limit is None or taken < limit:
            size = page_size if limit is None else min(limit - taken, page_size)
            page = await list_call(*args, cursor=cursor, limit=size, **params)
            yield page
            taken, cursor = taken + len(page.items), page.next_cursor
            if cursor is None:
                return

    async def items(
        self,
        list_call: Callable[..., Awaitable[Page[Item]]],
        /,
        *args: Any,
        limit: int | None = None,
        page_size: int = MAX_PAGE,
        **params: Any,
    ) -> AsyncIterator[Item]:
        async for page in self.pages(list_call, *args, limit=limit, page_size=page_size, **params):
            for item in page.items:
                yield item

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
