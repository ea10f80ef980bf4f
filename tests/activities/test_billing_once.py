"""Billing a run happens once, whoever attempts it and however often (issue 7, reproductions 3
and 4): a repeated or overlapping `post_billing` finds the first attempt's lines and answers the
same, and a draft that would pass the maximum invoice total hands the lines to a fresh draft
instead of overflowing. On SQLite and PostgreSQL, through the activity itself."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from activities.milestone_run import MilestoneRunActivities
from api.example import platform_migration
from api.routes.customers import create_customer
from api.routes.engagements import create_engagement
from api.routes.principals import create_principal
from api.schemas import CustomerIn, EngagementIn, PrincipalIn, TriggerIn
from db.models import Invoice, InvoiceLine, Milestone, RetentionEntry
from db.session import make_engine, make_session_factory
from domain.bounds import MAX_AMOUNT_MINOR, MAX_INVOICE_MINOR
from services.callers import Caller
from services.triggers import accept_trigger
from tests.activities.test_numbering import all_at_once
from tests.conftest import database
from workflows.contracts import BillingResult, PostBilling, RunInput

ADMIN = Caller("admin", "admin")
AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).isoformat()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database(request.param, tmp_path) as url:
        engine: Engine = make_engine(url)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


def engagement(
    sessions: sessionmaker[Session], milestones: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The example engagement (or these milestones, without retention) through the routes' code."""
    with sessions() as session:
        people = [
            create_principal(PrincipalIn(name=n, email=f"{n}@example.com"), session, ADMIN)["id"]
            for n in ("lead", "client", "lead_backup", "client_backup")
        ]
        customer = create_customer(CustomerIn(name="Acme Corp", currency="USD"), session, ADMIN)
        body = platform_migration(customer["id"], *people)
        if milestones is not None:
            body["milestones"] = milestones
            body["retention"] = {"percent": "0"}
        return create_engagement(EngagementIn.model_validate(body), session, ADMIN)


def trigger(sessions: sessionmaker[Session], milestone_id: str) -> RunInput:
    with sessions() as session:
        body = TriggerIn(source="test").model_dump(mode="json")
        return accept_trigger(session, ADMIN, milestone_id, f"key-{uuid.uuid4()}", body).run


def bill(sessions: sessionmaker[Session], run: RunInput) -> BillingResult:
    return MilestoneRunActivities(sessions).post_billing(PostBilling(run, AT))


def count(sessions: sessionmaker[Session], model: type, **where: str) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return session.scalar(query) or 0


def phase_1_run(sessions: sessionmaker[Session]) -> RunInput:
    created = engagement(sessions)
    return trigger(sessions, created["milestones"][0]["id"])


def test_billing_a_run_twice_posts_its_lines_once_and_answers_the_same_both_times(
    sessions: sessionmaker[Session],
) -> None:
    run = phase_1_run(sessions)

    first, second = bill(sessions, run), bill(sessions, run)

    assert second == first
    assert (first.amounts.gross_minor, first.amounts.retention_minor) == (3_000_000, 300_000)
    assert count(sessions, InvoiceLine, run_id=run.run_id, kind="milestone") == 1
    assert count(sessions, InvoiceLine, run_id=run.run_id) == 2
    assert count(sessions, RetentionEntry, run_id=run.run_id) == 1


def test_two_overlapping_billing_attempts_post_once_and_neither_reports_a_conflict(
    sessions: sessionmaker[Session],
) -> None:
    run = phase_1_run(sessions)
    results: list[BillingResult] = []

    errors = all_at_once([lambda: results.append(bill(sessions, run)) for _ in range(2)])

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert count(sessions, InvoiceLine, run_id=run.run_id, kind="milestone") == 1
    with sessions() as session:
        invoice = session.get_one(Invoice, results[0].invoice_id)
        milestone = session.get_one(Milestone, run.milestone_id)
    assert invoice.total_minor == 3_000_000 - 300_000
    assert milestone.billed_minor == 3_000_000


def test_two_milestones_at_the_maximum_fee_on_one_customer_both_bill(
    sessions: sessionmaker[Session],
) -> None:
    milestones = [{"key": k, "name": k, "fee_minor": MAX_AMOUNT_MINOR} for k in ("a", "b")]
    created = engagement(sessions, milestones)

    results = [bill(sessions, trigger(sessions, m["id"])) for m in created["milestones"]]

    assert [r.amounts.gross_minor for r in results] == [MAX_AMOUNT_MINOR] * 2
    with sessions() as session:
        invoice = session.get_one(Invoice, results[0].invoice_id)
    assert invoice.total_minor == 2 * MAX_AMOUNT_MINOR


def test_a_milestone_that_would_pass_the_maximum_invoice_total_bills_on_a_fresh_draft(
    sessions: sessionmaker[Session],
) -> None:
    per_invoice = MAX_INVOICE_MINOR // MAX_AMOUNT_MINOR  # 100 maximum fees fill one invoice
    milestones = [
        {"key": f"m{n}", "name": f"Milestone {n}", "fee_minor": MAX_AMOUNT_MINOR}
        for n in range(per_invoice + 1)
    ]
    created = engagement(sessions, milestones)

    results = [bill(sessions, trigger(sessions, m["id"])) for m in created["milestones"]]

    full, fresh = results[0].invoice_id, results[-1].invoice_id
    assert fresh != full
    assert {r.invoice_id for r in results[:-1]} == {full}
    with sessions() as session:
        drafts = {i.id: i for i in session.scalars(select(Invoice))}
    assert drafts[full].total_minor == MAX_INVOICE_MINOR
    assert drafts[fresh].total_minor == MAX_AMOUNT_MINOR
    assert {i.status for i in drafts.values()} == {"draft"}  # both are finalized as usual
    assert drafts[full].draft_key is None  # the full one takes no more lines
