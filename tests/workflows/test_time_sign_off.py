"""Timesheet sign-off and client-caused delay on the time-skipping server with the real
activities, on both databases: a month's close starts the dual sign-off and its lines post only
once both roles approve, the monthly close leaves a rejected timesheet to an admin, and a bonus
whose deadline a client's delay moved still qualifies after the original deadline has passed.
A silent client is deemed to accept a timesheet as it would a milestone."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from api.example import platform_migration
from db.models import Engagement, InvoiceLine
from db.time_entries import TimePeriod
from domain.times import iso
from services.time_entries import post_entries
from services.time_periods import month_of, period_id, previous_month, start_close
from tests.workflows.conftest import ADMIN, Harness
from workflows.time_period import ClosePeriodInput, CloseTimePeriod
from workflows.time_period_schedule import CloseDueInput, CloseDueTimePeriods
from workflows.time_sign_off import TimesheetSignOff

TERMS = {"rate_card": [{"role": "senior", "rate_minor": 20_000}]}


def work(external_id: str, day: str, hours: str) -> dict:
    return {
        "external_id": external_id,
        "person": "pat",
        "role": "senior",
        "date": day,
        "hours": hours,
    }


async def test_a_timesheet_bills_only_once_both_roles_sign_it_off(
    harness: Harness,
):
    harness.engage(time_and_materials={**TERMS, "approval": True})
    eng = harness.engagement["id"]
    with harness.sessions() as session:
        post_entries(session, ADMIN, eng, [work("a", "2025-10-01", "8")])  # 160,000

    await start_close(
        harness.env.client, harness.task_queue, ClosePeriodInput(eng, "2025-10", "admin")
    )
    close = harness.env.client.get_workflow_handle_for(
        CloseTimePeriod.run, f"time-period:{eng}:2025-10"
    )
    requested = await close.result()
    await harness.replay(close)
    assert requested.sign_off_run_id == f"timesheet:{eng}:2025-10:1"
    assert (requested.invoice_id, requested.gross_minor) == (None, 160_000)

    sheet = harness.env.client.get_workflow_handle_for(
        TimesheetSignOff.run, requested.sign_off_run_id
    )
    status = await harness.wait_for_stage(sheet, "awaiting_approval")
    assert status.kind == "timesheet" and status.details["period"] == "2025-10"
    with harness.sessions() as session:
        assert (
            session.scalars(select(InvoiceLine).where(InvoiceLine.run_id.contains(eng))).all() == []
        )
    await harness.decide(sheet, "delivery_lead", "lead")
    await harness.decide(sheet, "client_ap", "client")

    result = await harness.finish(sheet)

    assert result.stage == "billed"
    assert [(d.role, d.via) for d in result.decisions] == [
        ("delivery_lead", "approver"),
        ("client_ap", "approver"),
    ]
    with harness.sessions() as session:
        period = session.get_one(TimePeriod, (eng, "2025-10"))
        assert (period.status, period.invoice_id) == ("closed", result.invoice_id)
        lines = session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == period.invoice_id)
        )
        assert [(line.kind, line.amount_minor) for line in lines] == [
            ("time_and_materials", 160_000)
        ]


async def test_a_timesheet_the_client_leaves_unanswered_is_deemed_accepted_and_bills(
    harness: Harness,
):
    harness.engage(time_and_materials={**TERMS, "approval": True})
    eng = harness.engagement["id"]
    with harness.sessions() as session:
        post_entries(session, ADMIN, eng, [work("a", "2025-10-01", "2")])  # 40,000
    await start_close(
        harness.env.client, harness.task_queue, ClosePeriodInput(eng, "2025-10", "admin")
    )
    close = harness.env.client.get_workflow_handle_for(
        CloseTimePeriod.run, f"time-period:{eng}:2025-10"
    )
    sheet = harness.env.client.get_workflow_handle_for(
        TimesheetSignOff.run, (await close.result()).sign_off_run_id
    )
    status = await harness.wait_for_stage(sheet, "awaiting_approval")
    await harness.decide(sheet, "delivery_lead", "lead")

    deemed_at = datetime.fromisoformat(status.deadlines["deemed_acceptance_at"])
    await harness.skip(deemed_at - await harness.env.get_current_time() + timedelta(minutes=1))
    result = await harness.finish(sheet)

    assert result.stage == "billed"
    assert [(d.role, d.via) for d in result.decisions] == [
        ("delivery_lead", "approver"),
        ("client_ap", "deemed"),
    ]
    with harness.sessions() as session:
        period = session.get_one(TimePeriod, (eng, "2025-10"))
        assert (period.status, period.invoice_id) == ("closed", result.invoice_id)


async def test_a_bonus_due_before_the_client_delayed_it_qualifies_on_its_moved_deadline(
    harness: Harness,
):
    now = await harness.env.get_current_time()
    bonus = {
        "key": "on-time",
        "name": "On-time bonus",
        "kind": "bonus",
        "fee_minor": None,
        "fee_percent_of": {"milestone": "phase-3", "percent": "5"},
        "trigger": "manual",
        "deadline": iso(now + timedelta(days=1)),
    }
    milestones = platform_migration("", "", "", "", "")["milestones"]
    terms = {**TERMS, "advisory_rate_minor": 100_000, "delay_grace": 3}
    harness.engage(milestones=[*milestones, bonus], time_and_materials=terms)
    delay = {
        "external_id": "d1",
        "kind": "dependency_delay",
        "caused_by": "client security review",
        "milestone": "phase-3",
        "business_days": 5,
        "date": now.date().isoformat(),
    }
    with harness.sessions() as session:
        (posted,) = post_entries(session, ADMIN, harness.engagement["id"], [delay])
    assert posted.status == "created", posted.error

    await harness.skip(timedelta(days=3))  # past the deadline as first agreed
    run = await harness.trigger("on-time")

    status = await harness.wait_for_stage(run, "awaiting_approval")
    assert status.stage == "awaiting_approval"  # not ineligible: the deadline moved 5 days


async def test_the_monthly_close_leaves_a_rejected_timesheet_to_the_admin(harness: Harness):
    harness.engage(time_and_materials={**TERMS, "approval": True})
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
        post_entries(session, ADMIN, eng, [work("a", f"{last}-15", "1")])

    async def monthly_close() -> list[str]:
        result = await harness.env.client.execute_workflow(
            CloseDueTimePeriods.run,
            CloseDueInput(grace_days=0),
            id=f"due-{uuid.uuid4()}",
            task_queue=harness.task_queue,
        )
        return result.closed

    assert period_id(eng, last) in await monthly_close()
    sheet = harness.env.client.get_workflow_handle_for(
        TimesheetSignOff.run, f"timesheet:{eng}:{last}:1"
    )
    await harness.wait_for_stage(sheet, "awaiting_approval")
    await harness.decide(sheet, "client_ap", "client", "reject", "hours not agreed")
    assert (await harness.finish(sheet)).stage == "rejected"

    assert period_id(eng, last) not in await monthly_close()
    with harness.sessions() as session:
        period = session.get_one(TimePeriod, (eng, last))
        assert (period.status, period.sign_off_run_id) == ("open", sheet.id)
