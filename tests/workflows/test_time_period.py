"""CloseTimePeriod on the time-skipping server with the real activity, on both databases: it bills
the month's entries once, and a second close finds the period closed and changes nothing.
"""

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from db.models import Engagement, Invoice, InvoiceLine
from db.time_entries import TimePeriod
from services.time_entries import post_entries
from services.time_periods import month_of, period_id, previous_month, start_close
from tests.workflows.conftest import ADMIN, Harness
from workflows.time_period import ClosePeriodInput, CloseTimePeriod
from workflows.time_period_schedule import CloseDueInput, CloseDueTimePeriods

TERMS = {
    "rate_card": [{"role": "senior", "rate_minor": 20_000}],
    "not_to_exceed_minor": 300_000,
}


def entry(external_id: str, day: str, hours: str) -> dict:
    return {
        "external_id": external_id,
        "person": "pat",
        "role": "senior",
        "date": day,
        "hours": hours,
    }


async def close(harness: Harness, period: str):
    inp = ClosePeriodInput(harness.engagement["id"], period, "admin")
    await start_close(harness.env.client, harness.task_queue, inp)
    handle = harness.env.client.get_workflow_handle_for(
        CloseTimePeriod.run, period_id(inp.engagement_id, period)
    )
    return handle, await handle.result()


async def test_closing_a_period_bills_it_once_under_the_not_to_exceed(harness: Harness):
    harness.engage(time_and_materials=TERMS)
    eng = harness.engagement["id"]
    with harness.sessions() as session:
        results = post_entries(
            session,
            ADMIN,
            eng,
            [entry("a", "2025-10-01", "8"), entry("b", "2025-10-02", "8")],  # 160,000 each
        )
    assert [r.status for r in results] == ["created", "created"]

    handle, closed = await close(harness, "2025-10")
    await harness.replay(handle)
    assert (closed.gross_minor, closed.capped_minor, closed.entry_count) == (300_000, 20_000, 2)
    assert not closed.already_closed

    _, again = await close(harness, "2025-10")
    assert again.already_closed and again.entries_sha256 == closed.entries_sha256
    with harness.sessions() as session:
        invoice = session.get_one(Invoice, closed.invoice_id)
        lines = session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
        assert [(line.kind, line.amount_minor) for line in lines] == [
            ("time_and_materials", 300_000)
        ]
        assert invoice.total_minor == 300_000

    # The not-to-exceed is used up: November's work is recorded but bills nothing.
    with harness.sessions() as session:
        post_entries(session, ADMIN, eng, [entry("c", "2025-11-03", "1")])
    _, november = await close(harness, "2025-11")
    assert (november.gross_minor, november.capped_minor) == (0, 20_000)


async def test_the_monthly_close_closes_last_month_of_each_engagement_once(harness: Harness):
    harness.engage(time_and_materials={**TERMS, "minimum_minor": 50_000})
    eng = harness.engagement["id"]
    now = await harness.env.get_current_time()
    last = previous_month(month_of(now.date()))
    with harness.sessions() as session:  # the engagement began two months ago
        session.execute(
            update(Engagement)
            .where(Engagement.id == eng)
            .values(created_at=now - timedelta(days=70))
        )
        session.commit()
        post_entries(session, ADMIN, eng, [entry("a", f"{last}-15", "1")])  # 20,000

    run = CloseDueTimePeriods.run
    handle = await harness.env.client.start_workflow(
        run, CloseDueInput(grace_days=0), id=f"due-{uuid.uuid4()}", task_queue=harness.task_queue
    )
    result = await handle.result()
    await harness.replay(handle)
    assert period_id(eng, last) in result.closed
    with harness.sessions() as session:
        closed = session.get_one(TimePeriod, (eng, last))
        assert (closed.status, closed.summary["gross_minor"]) == ("closed", 50_000)  # the floor

    again = await harness.env.client.execute_workflow(
        run, CloseDueInput(grace_days=0), id=f"due-{uuid.uuid4()}", task_queue=harness.task_queue
    )
    assert period_id(eng, last) not in again.closed
