"""SLA periods judged over real HTTP on both databases: a failing month bills nothing and is
recorded not_met, its service credit lands on the customer's next (draft) invoice with the
right amount, a late report for a judged month is refused (period-closed), a billed month
stays period-billed, and each period's standing is listed."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from db.models import Milestone
from domain.periods import PeriodKind, bounds, period_containing
from tests.api.problems import assert_problem
from tests.api.test_sla import UPTIME, hosting
from tests.conftest_stack import Example
from workflows.sla_period import JudgeSlaPeriod
from workflows.sla_period_schedule import ensure_sla_periods_schedule

ZONE = "Europe/Berlin"


def month_before(period: str) -> str:
    start, _ = bounds(PeriodKind.MONTHLY, period, ZONE)
    return period_containing(PeriodKind.MONTHLY, start - timedelta(hours=1), ZONE)


async def sla_since_two_months(example: Example, **terms: Any) -> tuple[Example, list[str]]:
    """A monthly uptime SLA (1,500.00 a month, 250.00 credit for a missed one) created early in
    the month before last; that month, last month and this month."""
    milestone = {
        "key": "uptime-sla",
        "name": "Platform uptime SLA",
        "kind": "sla",
        "period": "monthly",
        "fee_minor": 150_000,
        "service_credit_minor": 25_000,
        "trigger": "automatic",
        "acceptance_criteria": [UPTIME],
        **terms,
    }
    response = await example.stack.post("/v1/engagements", hosting(example, [milestone]))
    assert response.status_code == 201, response.text
    engagement = response.json()
    [created] = engagement["milestones"]
    assert (created["service_credit_minor"], created["report_grace_days"]) == (
        25_000,
        terms.get("report_grace_days"),
    )
    this = period_containing(PeriodKind.MONTHLY, datetime.now(UTC), ZONE)
    months = [month_before(month_before(this)), month_before(this), this]
    began = bounds(PeriodKind.MONTHLY, months[0], ZONE)[0] + timedelta(days=1)
    with example.stack.sessions() as session:
        session.execute(
            update(Milestone).where(Milestone.id == created["id"]).values(created_at=began)
        )
        session.commit()
    return Example(example.stack, example.people, example.customer, engagement), months


async def report(example: Example, period: str, uptime: str) -> Any:
    return await example.trigger(
        "uptime-sla", {"source": "monitoring", "period": period, "kpis": {"uptime_pct": uptime}}
    )


async def periods(example: Example) -> dict[str, dict[str, Any]]:
    path = f"/v1/milestones/{example.milestone('uptime-sla')}/sla-periods"
    response = await example.stack.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return {item["period"]: item for item in response.json()["items"]}


async def judge(example: Example, period: str) -> dict[str, Any]:
    """Ask for the period's judgement and wait until it is recorded."""
    path = f"/v1/milestones/{example.milestone('uptime-sla')}/sla-periods/{period}/judge"
    response = await example.stack.post(path, {})
    assert response.status_code in (200, 202), response.text
    for _ in range(300):
        judged = (await periods(example))[period]
        if judged["judged_at"] is not None:
            return judged
        await asyncio.sleep(0.1)
    raise AssertionError(f"period {period} was never judged")


async def audit_events(example: Example) -> list[dict[str, Any]]:
    response = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


async def test_a_failing_month_bills_nothing_and_records_not_met_with_a_credit_on_the_next_invoice(
    example: Example,
):
    example, (billed, failed, this) = await sla_since_two_months(example, report_grace_days=0)
    passing = await report(example, billed, "99.95")
    assert passing.status_code == 202, passing.text
    run = await example.wait_for_stage(passing.json()["run_id"], "billed")
    failing = await report(example, failed, "99.5")
    assert failing.status_code == 202, failing.text
    rejected = await example.wait_for_stage(failing.json()["run_id"], "rejected")
    assert rejected["invoice_id"] is None  # the failing month bills nothing

    before = await periods(example)
    assert [(p, before[p]["status"]) for p in before] == [
        (billed, "met"),
        (failed, "pending"),
        (this, "open"),
    ]
    not_met = await judge(example, failed)
    assert not_met["status"] == "not_met"
    assert not_met["credit_minor"] == 25_000
    assert not_met["reason"] == "no passing report before the period was judged"
    assert not_met["invoice_id"] == run["invoice_id"]  # the customer's open draft

    invoice = (await example.stack.get(f"/v1/invoices/{run['invoice_id']}")).json()
    assert invoice["status"] == "draft"
    [credit] = [line for line in invoice["lines"] if line["kind"] == "service_credit"]
    assert credit["amount_minor"] == -25_000
    assert credit["description"] == (
        f"Service credit: Platform uptime SLA (uptime-sla), SLA period {failed} not met"
    )
    assert credit["details"]["period"] == failed
    assert invoice["total_minor"] == 150_000 - 25_000

    [event] = [e for e in await audit_events(example) if e["kind"] == "sla_period_not_met"]
    assert (event["data"]["period"], event["data"]["credit_minor"]) == (failed, 25_000)
    assert event["data"]["reason"] == not_met["reason"]

    again = await example.stack.post(
        f"/v1/milestones/{example.milestone('uptime-sla')}/sla-periods/{failed}/judge", {}
    )
    assert (again.status_code, again.json()) == (200, not_met)  # judged once, credited once
    invoice = (await example.stack.get(f"/v1/invoices/{run['invoice_id']}")).json()
    assert [line["kind"] for line in invoice["lines"]].count("service_credit") == 1


async def test_a_late_report_for_a_judged_month_is_refused(example: Example):
    example, (billed, missed, _) = await sla_since_two_months(example, report_grace_days=0)
    passing = await report(example, billed, "99.95")
    await example.wait_for_stage(passing.json()["run_id"], "billed")
    assert (await judge(example, billed))["status"] == "met"
    assert (await judge(example, missed))["status"] == "not_met"

    late = await report(example, missed, "99.99")
    problem = assert_problem(late, 409)
    assert problem["type"].endswith("period-closed")
    assert f"period {missed} was judged not_met" in problem["detail"]
    again = await report(example, billed, "99.99")
    assert assert_problem(again, 409)["type"].endswith("period-billed")
    statuses = {p: item["status"] for p, item in (await periods(example)).items()}
    assert (statuses[billed], statuses[missed]) == ("met", "not_met")


async def test_a_month_whose_report_awaits_sign_off_is_judged_when_the_report_ends(
    example: Example,
):
    example, (_, month, _) = await sla_since_two_months(
        example, report_grace_days=0, trigger="manual"
    )
    posted = await report(example, month, "99.95")
    run_id = posted.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    path = f"/v1/milestones/{example.milestone('uptime-sla')}/sla-periods/{month}/judge"
    started = await example.stack.post(path, {})
    assert started.status_code == 202, started.text
    handle = example.stack.temporal.get_workflow_handle_for(
        JudgeSlaPeriod.run, started.json()["workflow_id"]
    )
    assert (await handle.result()).status == "pending"  # nothing recorded, nothing credited
    assert (await periods(example))[month]["status"] == "pending"

    approved = await example.decide(run_id, "client_ap", "client")
    assert approved.status_code in (200, 202), approved.text
    billed = await example.wait_for_stage(run_id, "billed")
    met = await judge(example, month)
    assert (met["status"], met["run_id"], met["credit_minor"]) == ("met", billed["run_id"], 0)


async def test_a_period_is_judged_only_once_its_report_grace_has_passed(example: Example):
    example, (_, _, this) = await sla_since_two_months(example)  # the default grace: 3 days
    path = f"/v1/milestones/{example.milestone('uptime-sla')}/sla-periods"
    running = await example.stack.post(f"{path}/{this}/judge", {})
    assert "can be judged from" in assert_problem(running, 409)["detail"]
    for name, field in (("2026-W47", "period"), ("2026-13", "period")):
        assert_problem(await example.stack.post(f"{path}/{name}/judge", {}), 422, field)
    before = await example.stack.post(f"{path}/2001-01/judge", {})
    assert "first period" in assert_problem(before, 409)["detail"]
    client = await example.stack.post(f"{path}/{this}/judge", {}, example.token("client"))
    assert_problem(client, 403)
    listed = await example.stack.get(path, example.token("client"))  # people on it may read
    assert listed.status_code == 200, listed.text
    not_sla = await example.stack.get(
        f"/v1/milestones/{example.milestone('uptime-sla')}x/sla-periods"
    )
    assert_problem(not_sla, 404)


async def test_a_service_credit_is_an_sla_milestones_bounded_whole_amount(example: Example):
    base = {
        "key": "uptime-sla",
        "name": "SLA",
        "kind": "sla",
        "period": "monthly",
        "fee_minor": 100,
        "trigger": "automatic",
        "acceptance_criteria": [UPTIME],
    }
    for terms in (
        {"service_credit_minor": -1},
        {"service_credit_minor": 12.5},
        {"service_credit_minor": "100"},
        {"service_credit_minor": 10**20},
        {"report_grace_days": 91},
        {"report_grace_days": -1},
    ):
        refused = await example.stack.post("/v1/engagements", hosting(example, [base | terms]))
        assert_problem(refused, 422, "milestones")
    standard = {"key": "build", "name": "Build", "fee_minor": 100, "service_credit_minor": 5}
    refused = await example.stack.post("/v1/engagements", hosting(example, [standard]))
    assert "only an SLA milestone" in assert_problem(refused, 422)["detail"]


async def test_the_schedule_judges_a_missed_month_by_itself(example: Example):
    example, (first, second, _) = await sla_since_two_months(example, report_grace_days=0)
    schedule_id = f"judge-sla-periods-{uuid.uuid4()}"
    stack = example.stack
    await ensure_sla_periods_schedule(stack.temporal, stack.task_queue, 3600, schedule_id)
    try:
        await stack.temporal.get_schedule_handle(schedule_id).trigger()
        for _ in range(300):
            listed = await periods(example)
            if listed[second]["judged_at"] is not None and listed[first]["judged_at"]:
                break
            await asyncio.sleep(0.1)
    finally:
        await ensure_sla_periods_schedule(stack.temporal, stack.task_queue, 0, schedule_id)
    for month in (first, second):
        judged = listed[month]
        assert (judged["status"], judged["judged_by"], judged["credit_minor"]) == (
            "not_met",
            "schedule",
            25_000,
        )
    invoice = (await stack.get(f"/v1/invoices/{listed[first]['invoice_id']}")).json()
    assert invoice["total_minor"] == -50_000  # two credits and nothing billed: owed to the client
    finalized = await stack.post(f"/v1/invoices/{invoice['id']}/finalize", None)
    assert finalized.status_code == 200, finalized.text
    assert (finalized.json()["status"], finalized.json()["total_minor"]) == ("finalized", -50_000)
    pdf = await stack.http.get(f"/v1/invoices/{invoice['id']}.pdf", headers=stack.auth())
    assert pdf.status_code == 200, pdf.text
