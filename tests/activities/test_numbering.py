"""Invoice numbering: gapless and unique per series and year, even under concurrent finalization,
on PostgreSQL (row locks) and SQLite (one writer at a time)."""

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from activities.documents import InvoiceEmpty, finalize_invoice, next_number
from db.models import Customer, Invoice, InvoiceLine, new_id
from db.session import make_engine, make_session_factory
from tests.conftest import database

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
WORKERS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database(request.param, tmp_path) as url:
        engine: Engine = make_engine(url)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


def drafts(sessions: sessionmaker[Session], count: int, lines: int = 1) -> list[str]:
    """`count` drafts of one customer's, each with `lines` lines of 100.00."""
    with sessions.begin() as session:
        customer = Customer(id=new_id("cus"), name="Acme", currency="USD")
        session.add(customer)
        ids = []
        for n in range(count):
            invoice = Invoice(
                id=new_id("inv"),
                customer_id=customer.id,
                currency="USD",
                draft_key=f"{customer.id}:USD:{n}",
                total_minor=10_000 * lines,
            )
            session.add(invoice)
            session.flush()
            session.add_all(
                InvoiceLine(
                    id=new_id("lin"),
                    invoice_id=invoice.id,
                    kind="milestone",
                    description=f"line {i}",
                    amount_minor=10_000,
                )
                for i in range(lines)
            )
            ids.append(invoice.id)
        return ids


def all_at_once(jobs: list[Callable[[], None]]) -> list[BaseException]:
    """Run every job in its own thread, released together; the errors they raised."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def numbers_of(sessions: sessionmaker[Session], invoice_ids: list[str]) -> list[str | None]:
    """The invoices' numbers, in the order of `invoice_ids`."""
    with sessions() as session:
        return [session.get_one(Invoice, invoice_id).number for invoice_id in invoice_ids]


def test_concurrent_finalizations_take_numbers_one_to_n_without_gaps_or_duplicates(
    sessions: sessionmaker[Session],
) -> None:
    ids = drafts(sessions, WORKERS)

    def finalize(invoice_id: str) -> Callable[[], None]:
        def job() -> None:
            with sessions.begin() as session:
                finalize_invoice(session, invoice_id, issuer_prefix="TG", actor="test", at=AT)

        return job

    assert all_at_once([finalize(i) for i in ids]) == []
    expected = [f"TG-2026-{n:06d}" for n in range(1, WORKERS + 1)]
    assert sorted(n or "" for n in numbers_of(sessions, ids)) == expected


def test_a_rolled_back_finalization_gives_its_number_to_the_next_invoice(
    sessions: sessionmaker[Session],
) -> None:
    first, second = drafts(sessions, 2)
    with sessions() as session:
        finalize_invoice(session, first, issuer_prefix="TG", actor="test", at=AT)
        session.rollback()
    with sessions.begin() as session:
        finalize_invoice(session, second, issuer_prefix="TG", actor="test", at=AT)
    assert numbers_of(sessions, [first, second]) == [None, "TG-2026-000001"]


def test_concurrent_first_uses_of_a_series_share_one_gapless_sequence(
    sessions: sessionmaker[Session],
) -> None:
    taken: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        with sessions.begin() as session:
            number = next_number(session, "TG-CN", 2027)
        with lock:
            taken.append(number)

    assert all_at_once([take] * WORKERS) == []
    assert sorted(taken) == [f"TG-CN-2027-{n:06d}" for n in range(1, WORKERS + 1)]


def test_each_year_and_series_counts_from_one(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        taken = [
            next_number(session, "TG", 2026),
            next_number(session, "TG", 2026),
            next_number(session, "TG", 2027),
            next_number(session, "ACME-CN", 2026),
        ]
    assert taken == ["TG-2026-000001", "TG-2026-000002", "TG-2027-000001", "ACME-CN-2026-000001"]


def test_finalizing_an_empty_draft_is_refused_and_takes_no_number(
    sessions: sessionmaker[Session],
) -> None:
    (full,) = drafts(sessions, 1)
    (empty,) = drafts(sessions, 1, lines=0)
    with pytest.raises(InvoiceEmpty), sessions.begin() as session:
        finalize_invoice(session, empty, issuer_prefix="TG", actor="test", at=AT)
    with sessions.begin() as session:
        finalize_invoice(session, full, issuer_prefix="TG", actor="test", at=AT)
    with sessions() as session:
        assert session.get_one(Invoice, empty).status == "draft"
        assert session.get_one(Invoice, full).number == "TG-2026-000001"
        assert session.scalar(select(func.count()).select_from(Invoice)) == 2
