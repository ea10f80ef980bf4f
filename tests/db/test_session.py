"""Sessions (db/session.py): readers never queue behind a writer, a read-only session cannot
write, and fifty concurrent sessions fit in the SQLite pool."""

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db.models import Engagement, Principal
from db.session import make_engine, make_session_factory, read_only_sessions
from tests.conftest import database
from tests.conftest_stack import Example

CONCURRENT = 50
PATIENCE = 10  # seconds; SQLite's busy time-out is 30 s, so a queued reader would exceed it


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database(request.param, tmp_path) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    with database("sqlite", tmp_path) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def count_principals(readers: sessionmaker[Session]) -> int:
    with readers() as session:
        return session.scalar(select(func.count()).select_from(Principal)) or 0


def test_fifty_readers_finish_while_a_writer_holds_the_sqlite_write_lock(sqlite_engine: Engine):
    writers = make_session_factory(sqlite_engine)
    readers = read_only_sessions(writers)
    with writers() as writer, ThreadPoolExecutor(CONCURRENT) as pool:
        writer.execute(text("SELECT 1"))  # a writer's transaction holds the write lock from here
        results = [pool.submit(count_principals, readers) for _ in range(CONCURRENT)]
        read_under_lock, _ = wait(results, timeout=PATIENCE)
        writer.rollback()
    assert len(read_under_lock) == CONCURRENT, "readers queued behind the writer's lock"
    assert [r.result() for r in results] == [0] * CONCURRENT


def test_a_read_only_session_refuses_to_write_and_the_next_writer_on_its_connection_can(
    engine: Engine,
):
    writers = make_session_factory(engine)
    with read_only_sessions(writers)() as session, pytest.raises(DBAPIError, match="read"):
        session.execute(update(Engagement).values(name="x"))
    with writers() as session:  # the pooled connection is a writer's again
        session.add(Principal(id="prn_1", name="P", email="p@example.com", token_hash="0" * 64))
        session.commit()
    assert count_principals(read_only_sessions(writers)) == 1


def test_fifty_sessions_held_at_once_fit_in_the_sqlite_pool(sqlite_engine: Engine):
    readers = make_session_factory(sqlite_engine, read_only=True)
    together = threading.Barrier(CONCURRENT, timeout=PATIENCE)

    def hold_a_connection(_: int) -> int:
        with readers() as session:
            session.execute(text("SELECT 1"))
            together.wait()  # every session holds its connection at this point
            return session.scalar(text("SELECT 1")) or 0

    with ThreadPoolExecutor(CONCURRENT) as pool:
        assert sum(pool.map(hold_a_connection, range(CONCURRENT))) == CONCURRENT


async def test_fifty_concurrent_reads_are_answered_while_a_writer_holds_its_transaction(
    example: Example,
):
    stack, engagement_id = example.stack, example.engagement["id"]
    path = f"/v1/engagements/{engagement_id}"
    with stack.sessions() as writer:
        writer.execute(update(Engagement).where(Engagement.id == engagement_id).values(name="new"))
        try:
            responses = await asyncio.wait_for(
                asyncio.gather(
                    *(stack.get(path, example.token("lead")) for _ in range(CONCURRENT))
                ),
                PATIENCE,
            )
        finally:
            writer.rollback()
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["name"] for r in responses} == {example.engagement["name"]}
