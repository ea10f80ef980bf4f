"""Time and materials next to milestones, over real HTTP on both databases: a batch of entries
priced from the rate card, duplicates and conflicts, a correction by reversal, closing November
into time_and_materials lines on the same draft as a milestone line, closing again changing
nothing, and a late entry refused unless it is booked into December as an adjustment."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from api.example import platform_migration
from db.models import Engagement
from services.time_periods import month_of, previous_month
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack
from workflows.time_period_schedule import ensure_time_periods_schedule

TERMS = {
    "rate_card": [
        {"role": "senior", "rate_minor": 20_000, "people": {"dana": 25_000}},
        {"role": "senior", "rate_minor": 22_000, "effective_from": "2025-12-01"},
        {"role": "junior", "rate_minor": 10_000},
    ],
    "period_cap_minor": 500_000,
    "minimum_minor": 100_000,
    "retention": True,
}


def entry(external_id: str, person: str, role: str, day: str, hours: str, **kw: Any) -> dict:
    return {
        "external_id": external_id,
        "person": person,
        "role": role,
        "date": day,
        "hours": hours,
        "description": f"work {external_id}",
        **kw,
    }


async def hybrid(stack: Stack) -> Example:
    """The example's milestones plus T&M terms (10% retention applies to both)."""
    people = {
        name: await stack.principal(name)
        for name in ("lead", "client", "lead_backup", "client_backup", "stranger")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme", "currency": "USD"})).json()
    body = platform_migration(
        customer["id"],
        *(people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")),
    )
    response = await stack.post("/v1/engagements", {**body, "time_and_materials": TERMS})
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


async def bill_phase_one(example: Example) -> str:
    response = await example.trigger(
        "phase-1", {"source": "t", "completion_percent": "100", "kpis": {"p95_latency_ms": "200"}}
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    return (await example.wait_for_stage(run_id, "billed"))["invoice_id"]


async def close(example: Example, period: str) -> dict[str, Any]:
    path = f"/v1/engagements/{example.engagement['id']}/time-periods/{period}"
    response = await example.stack.post(f"{path}/close", {})
    assert response.status_code in (200, 202), response.text
    for _ in range(300):
        view = (await example.stack.get(path)).json()
        if view["status"] == "closed":
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"period {period} never closed")


async def test_a_hybrid_engagement_bills_its_time_next_to_its_milestones(stack: Stack):
    example = await hybrid(stack)
    eng = example.engagement["id"]
    entries = f"/v1/engagements/{eng}/time-entries"
    assert example.engagement["time_and_materials"]["period_cap_minor"] == 500_000
    invoice_id = await bill_phase_one(example)

    batch = [
        entry("n1", "dana", "senior", "2025-11-03", "8"),  # her own rate: 200,000
        entry("n2", "pat", "senior", "2025-11-04", "7.5"),  # 150,000
        entry("n3", "sam", "junior", "2025-11-05", "7.25"),  # 72,500
        entry("n4", "sam", "junior", "2025-11-06", "1"),  # corrected below
        entry("bad", "sam", "partner", "2025-11-06", "1"),  # no such role: refused alone
        entry("n5", "pat", "senior", "2025-11-20", "8", milestone="phase-2"),  # 160,000
        entry("h", "pat", "senior", "2025-11-20", "8.125"),  # 3 decimals: refused alone
    ]
    response = await stack.post(entries, {"entries": batch})
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert [(r["external_id"], r["status"]) for r in results] == [
        ("n1", "created"),
        ("n2", "created"),
        ("n3", "created"),
        ("n4", "created"),
        ("bad", "refused"),
        ("n5", "created"),
        ("h", "refused"),
    ]
    assert results[0]["entry"]["rate_minor"] == 25_000
    assert [r["entry"]["amount_minor"] for r in results if r["status"] == "created"] == [
        200_000,
        150_000,
        72_500,
        10_000,
        160_000,
    ]
    assert results[4]["error"]["status"] == 422 and "partner" in results[4]["error"]["detail"]
    assert results[6]["error"]["errors"][0]["field"] == "hours"

    # The same body again: the same answer; a different body under the same id: 409.
    again = await stack.post(entries, batch[0])
    assert again.status_code == 200 and again.json() == results[0]["entry"]
    assert_problem(await stack.post(entries, {**batch[0], "hours": "9"}), 409)
    # A principal may read the engagement but not post time; its integration token may.
    assert_problem(await stack.post(entries, batch[0], example.token("lead")), 403)
    token = (await stack.post(f"/v1/engagements/{eng}/integration-tokens", {})).json()["token"]
    assert (await stack.post(entries, batch[0], token)).json() == results[0]["entry"]

    # A correction reverses n4 (the original stays) and posts the new values.
    fix = await stack.post(
        entries, entry("n4b", "sam", "junior", "2025-11-06", "2", correction_of="n4")
    )
    assert fix.status_code == 201, fix.text
    assert fix.json()["reversal"]["reverses"] == "n4"
    assert (fix.json()["reversal"]["hours"], fix.json()["reversal"]["amount_minor"]) == (
        "-1",
        -10_000,
    )
    assert_problem(
        await stack.post(
            entries, entry("n4c", "sam", "junior", "2025-11-06", "3", correction_of="n4")
        ),
        409,
    )

    preview = (await stack.get(f"/v1/engagements/{eng}/time-periods/2025-11")).json()
    assert (preview["status"], preview["preview"], preview["capped_minor"]) == (
        "open",
        True,
        102_500,
    )

    november = await close(example, "2025-11")
    # 442,500 fits under the 500,000 cap; n5 bills the 57,500 left and 102,500 is capped.
    assert (november["gross_minor"], november["capped_minor"], november["true_up_minor"]) == (
        500_000,
        102_500,
        0,
    )
    assert november["entry_count"] == 7 and november["hours"] == "32.75"
    by_id = {e["external_id"]: e for e in november["entries"] if e["external_id"]}
    assert (by_id["n5"]["billed_minor"], by_id["n5"]["capped_minor"]) == (57_500, 102_500)
    assert by_id["n4"]["billed_minor"] == 0

    invoice = (await stack.get(f"/v1/invoices/{invoice_id}")).json()
    lines = [(line["kind"], line["amount_minor"]) for line in invoice["lines"]]
    assert lines[:2] == [("milestone", 3_000_000), ("retention_withheld", -300_000)]
    assert sorted(lines[2:]) == [
        ("retention_withheld", -50_000),
        ("time_and_materials", 92_500),
        ("time_and_materials", 407_500),
    ]
    assert invoice["total_minor"] == sum(amount for _, amount in lines) == 3_150_000
    senior = next(
        line["details"]
        for line in invoice["lines"]
        if line["kind"] == "time_and_materials" and line["details"]["role"] == "senior"
    )
    assert senior == {
        "period": "2025-11",
        "role": "senior",
        "hours": "23.5",
        "entry_count": 3,
        "rates": [{"rate_minor": 25_000, "hours": "8"}, {"rate_minor": 20_000, "hours": "15.5"}],
        "amount_minor": 510_000,
        "capped_minor": 102_500,
        "billed_minor": 407_500,
    }
    assert "1,025.00 over the cap" in next(
        line["description"] for line in invoice["lines"] if line["details"] == senior
    )
    engagement = await example.refresh()
    assert engagement["retention_balance_minor"] == 300_000 + 50_000

    # Closing again changes nothing.
    assert await close(example, "2025-11") == november
    assert (await stack.get(f"/v1/invoices/{invoice_id}")).json()["total_minor"] == 3_150_000
    audit = (await stack.get(f"/v1/engagements/{eng}/audit?limit=200")).json()["items"]
    closed = [e for e in audit if e["kind"] == "time_period_closed"]
    assert len(closed) == 1 and closed[0]["data"]["entries_sha256"] == november["entries_sha256"]

    # November is closed: a late entry is refused unless booked into December as an adjustment.
    late = entry("n6", "sam", "junior", "2025-11-28", "1")
    assert_problem(await stack.post(entries, late), 409)
    booked = await stack.post(entries, {**late, "adjustment": True})
    assert booked.status_code == 201, booked.text
    assert (booked.json()["period"], booked.json()["date"]) == ("2025-12", "2025-11-28")
    # December bills it and tops the month up to its 100,000 floor.
    december = await close(example, "2025-12")
    assert sorted((line["kind"], line["amount_minor"]) for line in december["lines"]) == [
        ("minimum_true_up", 90_000),
        ("retention_withheld", -10_000),
        ("time_and_materials", 10_000),
    ]
    # Deleting a November entry now needs an adjustment too: it reverses into January.
    gone = f"{entries}/n1"
    assert_problem(await stack.http.delete(gone, headers=stack.auth()), 409)
    reversal = await stack.http.delete(f"{gone}?adjustment=true", headers=stack.auth())
    assert reversal.status_code == 200, reversal.text
    assert (reversal.json()["period"], reversal.json()["amount_minor"]) == ("2026-01", -200_000)
    again = await stack.http.delete(f"{gone}?adjustment=true", headers=stack.auth())
    assert again.json() == reversal.json()


async def test_time_and_materials_terms_and_entries_are_checked_at_the_door(example: Example):
    stack = example.stack
    eng = example.engagement["id"]
    # The example has no T&M terms: it bills no time.
    assert example.engagement["time_and_materials"] is None
    assert_problem(
        await stack.post(
            f"/v1/engagements/{eng}/time-entries", entry("x", "a", "senior", "2025-11-03", "1")
        ),
        409,
    )
    assert_problem(await stack.post(f"/v1/engagements/{eng}/time-periods/2025-11/close", {}), 409)
    body = platform_migration(
        example.customer["id"],
        *(example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")),
    )
    for terms, field in [
        ({**TERMS, "minimum_minor": 600_000}, "time_and_materials"),
        ({**TERMS, "rate_card": []}, "time_and_materials.rate_card"),
        (
            {**TERMS, "rate_card": [{"role": "r", "rate_minor": 1.5}]},
            "time_and_materials.rate_card",
        ),
        ({**TERMS, "rate_card": [{"role": "r", "rate_minor": 10}] * 2}, "time_and_materials"),
    ]:
        assert_problem(
            await stack.post("/v1/engagements", {**body, "time_and_materials": terms}), 422, field
        )
    hybrid_ = await hybrid(stack)
    path = f"/v1/engagements/{hybrid_.engagement['id']}"
    assert_problem(await stack.post(f"{path}/time-periods/2025-13/close", {}), 422)
    assert_problem(await stack.post(f"{path}/time-periods/2999-01/close", {}), 409)
    many = {"entries": [entry(f"e{i}", "a", "senior", "2025-11-03", "1") for i in range(1001)]}
    assert_problem(await stack.post(f"{path}/time-entries", many), 422, "entries")
    for bad, field in [
        (entry("y", "a", "senior", "2025-11-03", "24.5"), "hours"),
        (entry("y", "a", "senior", "2025-11-03", "0"), "hours"),
        (entry("y", "a", "senior", "2025-11-03", 7.5), "hours"),
        (entry("y", "a", "senior", "2025-11-31", "1"), "date"),
        (entry("y", "a", "senior", "2025-11-03", "1", milestone="nope"), "milestone"),
        (entry("y", "a", "senior", "2025-11-03", "1", correction_of="nope"), "correction_of"),
    ]:
        assert_problem(await stack.post(f"{path}/time-entries", bad), 422, field)
    view = (await stack.get(f"{path}/time-periods/2025-11")).json()
    assert view["entries"] == [] and view["true_up_minor"] == 100_000


async def test_the_monthly_schedule_closes_last_month_by_itself(stack: Stack):
    example = await hybrid(stack)
    eng = example.engagement["id"]
    now = datetime.now(UTC)
    last = previous_month(month_of(now.astimezone(ZoneInfo("America/New_York")).date()))
    with stack.sessions() as session:  # the engagement began two months ago
        session.execute(
            update(Engagement)
            .where(Engagement.id == eng)
            .values(created_at=now - timedelta(days=70))
        )
        session.commit()
    posted = await stack.post(
        f"/v1/engagements/{eng}/time-entries", entry("s1", "sam", "junior", f"{last}-10", "20")
    )
    assert posted.status_code == 201, posted.text
    schedule_id = f"close-time-periods-{uuid.uuid4()}"
    await ensure_time_periods_schedule(stack.temporal, stack.task_queue, 3600, 0, schedule_id)
    try:
        await stack.temporal.get_schedule_handle(schedule_id).trigger()
        for _ in range(300):
            view = (await stack.get(f"/v1/engagements/{eng}/time-periods/{last}")).json()
            if view["status"] == "closed":
                break
            await asyncio.sleep(0.1)
        assert (view["status"], view["closed_by"], view["gross_minor"]) == (
            "closed",
            "schedule",
            200_000,
        )
    finally:
        await ensure_time_periods_schedule(stack.temporal, stack.task_queue, 0, 0, schedule_id)
