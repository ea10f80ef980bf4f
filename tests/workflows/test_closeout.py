"""The engagement close-out on the time-skipping server, with real activities on SQLite."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowHandle

from db.models import AuditEvent, Engagement, Invoice, InvoiceLine, Milestone, RetentionEntry, Run
from services.change_inputs import CloseoutIn, WaiverIn
from services.closeouts import request_closeout, start_closeout
from tests.workflows.conftest import ADMIN, Harness, seed

WARRANTY = {"percent": "10", "release": "on_final_signoff", "release_delay": {"duration": "P180D"}}


@pytest.fixture
def warranty(harness: Harness) -> Harness:
    """The harness on a second engagement whose retention is released 180 days after close-out."""
    people, engagement = seed(harness.sessions, retention=WARRANTY)
    return replace(harness, people=people, engagement=engagement)


async def accept(h: Harness, *keys: str) -> None:
    kpis = {"phase-1": {"p95_latency_ms": "212"}, "phase-2": {"error_rate_pct": "0.4"}}
    for key in keys:
        run = await h.trigger(key, kpis.get(key))
        await h.decide(run, "delivery_lead", "lead")
        await h.decide(run, "client_ap", "client")
        assert (await h.finish(run)).stage == "billed"


async def close_out(h: Harness, **waive: str) -> WorkflowHandle:
    body = CloseoutIn(waive=[WaiverIn(milestone=k, reason=r) for k, r in waive.items()])
    with h.sessions() as session:
        closeout = request_closeout(session, ADMIN, h.engagement["id"], body)
    return await start_closeout(h.env.client, h.task_queue, closeout)


def balance(h: Harness) -> int:
    with h.sessions() as session:
        query = select(func.coalesce(func.sum(RetentionEntry.amount_minor), 0)).where(
            RetentionEntry.engagement_id == h.engagement["id"]
        )
        return session.scalar(query) or 0


def released_lines(h: Harness) -> list[int]:
    with h.sessions() as session:
        query = select(InvoiceLine.amount_minor).where(InvoiceLine.kind == "retention_release")
        return list(session.scalars(query))


def engagement_status(h: Harness) -> str:
    with h.sessions() as session:
        return session.get_one(Engagement, h.engagement["id"]).status


def milestone_statuses(h: Harness) -> dict[str, str]:
    with h.sessions() as session:
        query = select(Milestone.key, Milestone.status).where(
            Milestone.engagement_id == h.engagement["id"]
        )
        return {key: status for key, status in session.execute(query)}


def audit(h: Harness, run_id: str) -> list[AuditEvent]:
    with h.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.run_id == run_id).order_by(AuditEvent.seq)
        return list(session.scalars(query))


def assert_invoices_add_up(h: Harness) -> None:
    with h.sessions() as session:
        for invoice in session.scalars(select(Invoice)):
            lines = select(func.sum(InvoiceLine.amount_minor)).where(
                InvoiceLine.invoice_id == invoice.id
            )
            assert invoice.total_minor == session.scalar(lines)


async def test_after_a_180_day_warranty_the_whole_retention_is_released_on_one_line(
    warranty: Harness,
):
    h = warranty
    await accept(h, "phase-1", "phase-2", "phase-3")
    assert balance(h) == 1_000_000
    closeout = await close_out(h)
    await h.decide(closeout, "delivery_lead", "lead")
    await h.decide(closeout, "client_ap", "client")

    status = await h.wait_for_stage(closeout, "warranty")

    signed_off = datetime.fromisoformat(status.decisions[-1].at)
    release_at = datetime.fromisoformat(status.deadlines["release_at"])
    assert timedelta(days=180) <= release_at - signed_off < timedelta(days=180, minutes=1)
    assert status.details["retention_balance_minor"] == 1_000_000
    assert status.details["released_minor"] is None
    assert engagement_status(h) == "closed"
    assert (balance(h), released_lines(h)) == (1_000_000, [])

    await h.skip(timedelta(days=181))
    result = await h.finish(closeout)

    assert (result.kind, result.stage, result.outcome) == ("closeout", "released", "released")
    assert result.details["released_minor"] == 1_000_000
    assert released_lines(h) == [1_000_000]
    assert balance(h) == 0
    assert_invoices_add_up(h)
    with h.sessions() as session:
        line = session.scalars(select(InvoiceLine).where(InvoiceLine.run_id == closeout.id)).one()
        assert result.invoice_id == line.invoice_id
        entry = session.scalars(
            select(RetentionEntry).where(RetentionEntry.kind == "released")
        ).one()
        assert (entry.amount_minor, entry.run_id) == (-1_000_000, closeout.id)
        assert session.get_one(Run, closeout.id).stage == "released"


async def test_without_a_warranty_the_retention_is_released_at_sign_off_and_waivers_apply(
    harness: Harness,
):
    await accept(harness, "phase-1", "phase-2")
    closeout = await close_out(harness, **{"phase-3": "Descoped: the client runs the cutover"})
    await harness.decide(closeout, "delivery_lead", "lead")
    await harness.decide(closeout, "client_ap", "client")

    result = await harness.finish(closeout)

    assert result.stage == "released"
    assert result.deadlines["release_at"] is None
    assert result.details["waived"] == ["phase-3"]
    assert (result.details["retention_balance_minor"], result.details["released_minor"]) == (
        700_000,
        700_000,
    )
    assert (released_lines(harness), balance(harness)) == ([700_000], 0)
    assert_invoices_add_up(harness)
    assert engagement_status(harness) == "closed"
    assert milestone_statuses(harness) == {
        "phase-1": "accepted",
        "phase-2": "accepted",
        "phase-3": "waived",
    }
    events = audit(harness, closeout.id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "closeout_started"
    assert kinds.index("milestone_waived") < kinds.index("closeout_accepted")
    assert kinds[-1] == "retention_released"
    waived = next(e for e in events if e.kind == "milestone_waived")
    assert waived.milestone_id == harness.milestone_id("phase-3")
    assert waived.data["reason"] == "Descoped: the client runs the cutover"


async def test_a_rejected_closeout_leaves_the_engagement_active_and_releases_nothing(
    harness: Harness,
):
    await accept(harness, "phase-1", "phase-2")
    closeout = await close_out(harness, **{"phase-3": "Descoped"})
    await harness.decide(closeout, "delivery_lead", "lead")
    await harness.decide(closeout, "client_ap", "client", "reject", "Warranty items still open")

    result = await harness.finish(closeout)

    assert (result.stage, result.outcome) == ("rejected", "rejected")
    assert "Warranty items still open" in result.outcome_detail
    assert engagement_status(harness) == "active"
    assert milestone_statuses(harness)["phase-3"] == "pending"
    assert (released_lines(harness), balance(harness)) == ([], 700_000)
    assert "milestone_waived" not in [e.kind for e in audit(harness, closeout.id)]


async def test_a_silent_client_is_deemed_to_accept_the_closeout(harness: Harness):
    await accept(harness, "phase-1", "phase-2", "phase-3")
    closeout = await close_out(harness)
    await harness.decide(closeout, "delivery_lead", "lead")

    result = await harness.finish(closeout)

    deemed = result.decisions[-1]
    assert (deemed.role, deemed.via, deemed.principal_id) == ("client_ap", "deemed", None)
    assert result.stage == "released"
    assert (released_lines(harness), balance(harness)) == ([1_000_000], 0)


async def test_a_closeout_nobody_acts_on_expires_and_the_engagement_is_active_again(
    harness: Harness,
):
    await accept(harness, "phase-1", "phase-2", "phase-3")
    closeout = await close_out(harness)

    result = await harness.finish(closeout)

    assert (result.stage, result.outcome) == ("expired", "expired")
    assert engagement_status(harness) == "active"
    assert balance(harness) == 1_000_000


async def test_a_closeout_with_no_retention_held_releases_nothing_and_still_ends(
    harness: Harness,
):
    people, engagement = seed(harness.sessions, retention={"percent": "0"})
    h = replace(harness, people=people, engagement=engagement)
    await accept(h, "phase-1", "phase-2", "phase-3")
    closeout = await close_out(h)
    await h.decide(closeout, "delivery_lead", "lead")
    await h.decide(closeout, "client_ap", "client")

    result = await h.finish(closeout)

    assert (result.stage, result.details["released_minor"], result.invoice_id) == (
        "released",
        0,
        None,
    )
    assert released_lines(h) == []
    assert engagement_status(h) == "closed"
