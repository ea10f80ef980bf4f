"""The audit chain (db/audit.py): several appends in one transaction, across savepoints kept
and rolled back, and from concurrent transactions, always leave one unbroken chain."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.audit import append_event, verify_chain
from db.models import AuditEvent, Customer, Engagement, new_id
from tests.conftest import database_sessions


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with database_sessions(request.param, tmp_path_factory.mktemp(request.param)) as sessions:
        yield sessions


@pytest.fixture
def engagement_id(sessions: sessionmaker[Session]) -> str:
    customer = Customer(id=new_id("cus"), name="Acme Corp", currency="USD")
    engagement = Engagement(
        id=new_id("eng"),
        customer_id=customer.id,
        name="Platform migration",
        currency="USD",
        approval={"roles": {}},
    )
    with sessions.begin() as session:
        session.add_all([customer, engagement])
    return engagement.id


def append(session: Session, engagement_id: str, kind: str) -> AuditEvent:
    return append_event(session, engagement_id=engagement_id, actor="test", kind=kind)


def kinds(sessions: sessionmaker[Session], engagement_id: str) -> list[str]:
    with sessions() as session:
        query = (
            select(AuditEvent.kind)
            .where(AuditEvent.engagement_id == engagement_id)
            .order_by(AuditEvent.seq)
        )
        return list(session.scalars(query))


def test_appends_in_one_transaction_chain_onto_each_other(
    sessions: sessionmaker[Session], engagement_id: str
):
    with sessions.begin() as session:
        append(session, engagement_id, "before")
    with sessions.begin() as session:
        for kind in ("first", "second", "third"):
            append(session, engagement_id, kind)

    with sessions() as session:
        check = verify_chain(session, engagement_id)
    assert (check.ok, check.events) == (True, 4)
    assert kinds(sessions, engagement_id) == ["before", "first", "second", "third"]


def test_an_append_after_a_rolled_back_savepoint_takes_the_place_it_left(
    sessions: sessionmaker[Session], engagement_id: str
):
    with sessions.begin() as session:
        append(session, engagement_id, "kept")
        savepoint = session.begin_nested()
        append(session, engagement_id, "undone")
        savepoint.rollback()
        with session.begin_nested():
            append(session, engagement_id, "in a savepoint kept")
        append(session, engagement_id, "after")

    with sessions() as session:
        check = verify_chain(session, engagement_id)
    assert (check.ok, check.events) == (True, 3)
    assert kinds(sessions, engagement_id) == ["kept", "in a savepoint kept", "after"]


def test_concurrent_transactions_appending_twice_each_leave_one_chain(
    sessions: sessionmaker[Session], engagement_id: str
):
    def two_appends(n: int) -> None:
        with sessions.begin() as session:
            append(session, engagement_id, f"{n}a")
            append(session, engagement_id, f"{n}b")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(two_appends, range(8)))

    with sessions() as session:
        check = verify_chain(session, engagement_id)
    assert (check.ok, check.events) == (True, 16)
    appended = kinds(sessions, engagement_id)
    # Each transaction's two events are neighbours: the engagement lock serializes whole
    # transactions, not single appends.
    assert all(appended[i][:-1] == appended[i + 1][:-1] for i in range(0, 16, 2))
