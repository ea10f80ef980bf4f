"""Lists come in pages; the clients follow ``next_cursor`` for their caller."""

import asyncio

from api.example import platform_migration
from tests.conftest_stack import Example
from tollgate_client import AsyncTollgate, Tollgate


async def five_engagements(example: Example, tollgate: AsyncTollgate) -> tuple[str, list[str]]:
    """A new customer with five engagements: its id and theirs, oldest first."""
    customer = await tollgate.create_customer("Paged Corp", "USD")
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    ids = [
        (await tollgate.create_engagement(platform_migration(customer.id, *people))).id
        for _ in range(5)
    ]
    return customer.id, ids


async def test_pages_follow_the_cursor_to_the_last_page(example: Example, tollgate: AsyncTollgate):
    customer_id, created = await five_engagements(example, tollgate)

    pages = [
        page
        async for page in tollgate.pages(
            tollgate.list_engagements, customer_id=customer_id, page_size=2
        )
    ]

    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert [p.next_cursor is None for p in pages] == [False, False, True]
    assert [e.id for p in pages for e in p.items] == created


async def test_a_limit_stops_early_and_the_last_cursor_goes_on_from_there(
    example: Example, tollgate: AsyncTollgate
):
    customer_id, created = await five_engagements(example, tollgate)

    first = [
        page
        async for page in tollgate.pages(
            tollgate.list_engagements, customer_id=customer_id, limit=3, page_size=2
        )
    ]
    rest = await tollgate.list_engagements(customer_id=customer_id, cursor=first[-1].next_cursor)

    assert [len(p.items) for p in first] == [2, 1]
    assert [e.id for p in first for e in p.items] + [e.id for e in rest.items] == created
    assert rest.next_cursor is None


async def test_the_blocking_client_reads_the_same_list(example: Example, tollgate: AsyncTollgate):
    customer_id, created = await five_engagements(example, tollgate)

    def read() -> list[str]:  # in a thread: the API is served on this test's event loop
        with Tollgate(tollgate.base_url, tollgate.token) as blocking:
            items = blocking.items(blocking.list_engagements, customer_id=customer_id, page_size=2)
            return [e.id for e in items]

    assert await asyncio.to_thread(read) == created
