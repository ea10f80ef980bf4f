"""Changing T&M terms by change order, over real HTTP on both databases: new rates effective from
a date and a higher floor, signed by both roles, reprice the open month and bill from the next
close, while the closed month keeps its prices; an invalid change is a 422 that changes nothing,
and an engagement without T&M gains it through a change order."""

from typing import Any

from sqlalchemy import func, select

from api.example import platform_migration
from db.models import ChangeOrder
from tests.api.problems import assert_problem
from tests.api.test_change_orders import propose, sign_off
from tests.api.test_time_and_materials import TERMS, close, entry, hybrid
from tests.api.test_time_sign_off import period_in
from tests.conftest_stack import Example, Stack

# Junior rises to 120.00 from 15 November (inside the month that will be closed), senior to
# 240.00 from 15 December; each month is topped up to 4,000.00.
NEW_RATES = {
    "rate_card": [
        *TERMS["rate_card"],
        {"role": "senior", "rate_minor": 24_000, "effective_from": "2025-12-15"},
        {"role": "junior", "rate_minor": 12_000, "effective_from": "2025-11-15"},
    ],
    "minimum_minor": 400_000,
}
REASON = "Rates for 2026 agreed in the December steering meeting"


async def post(example: Example, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    path = f"/v1/engagements/{example.engagement['id']}/time-entries"
    response = await example.stack.post(path, {"entries": list(rows)})
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert all(r["status"] == "created" for r in results), results
    return [r["entry"] for r in results]


async def terms(example: Example, version: int | None = None) -> dict[str, Any]:
    query = "" if version is None else f"?version={version}"
    response = await example.stack.get(f"/v1/engagements/{example.engagement['id']}{query}")
    assert response.status_code == 200, response.text
    return response.json()["time_and_materials"]


async def period(example: Example, month: str) -> dict[str, Any]:
    path = f"/v1/engagements/{example.engagement['id']}/time-periods/{month}"
    response = await example.stack.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def amounts(view: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {e["external_id"]: (e["rate_minor"], e["amount_minor"]) for e in view["entries"]}


def order_count(example: Example) -> int:
    with example.stack.sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(ChangeOrder)
            .where(ChangeOrder.engagement_id == example.engagement["id"])
        )


async def test_new_rates_signed_by_both_roles_bill_from_the_next_close_and_leave_november_alone(
    stack: Stack,
):
    example = await hybrid(stack)
    old = example.engagement["time_and_materials"]
    await post(
        example,
        entry("n1", "pat", "senior", "2025-11-10", "8"),  # 160,000
        entry("n2", "sam", "junior", "2025-11-20", "2"),  # 20,000
    )
    november = await close(example, "2025-11")
    await post(
        example,
        entry("d1", "pat", "senior", "2025-12-02", "10"),  # 220,000 at December's senior rate
        entry("d2", "sam", "junior", "2025-12-03", "5"),  # 50,000, then 60,000
    )

    proposed = await propose(example, {"time_and_materials": NEW_RATES}, REASON)
    assert proposed.status_code == 202, proposed.text
    await example.wait_for_stage(proposed.json()["run_id"], "awaiting_approval")
    assert await terms(example) == old  # not yet signed
    assert amounts(await period(example, "2025-12"))["d2"] == (10_000, 50_000)

    await sign_off(example, proposed.json()["run_id"], "applied")

    assert (await example.refresh())["version"] == 2
    new = await terms(example)
    assert (new["rate_card"][-1], new["minimum_minor"], new["period_cap_minor"]) == (
        {"role": "junior", "rate_minor": 12_000, "effective_from": "2025-11-15", "people": {}},
        400_000,
        500_000,
    )
    assert await terms(example, version=1) == old
    assert await terms(example, version=2) == new
    # November was closed: its prices and its close stay as they were.
    assert await period(example, "2025-11") == november
    # December is open: its entries now carry the rates in effect on their dates.
    assert amounts(await period(example, "2025-12")) == {
        "d1": (22_000, 220_000),
        "d2": (12_000, 60_000),
    }
    audit = (await stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")).json()[
        "items"
    ]
    applied = next(e for e in audit if e["kind"] == "change_order_applied")["data"]
    assert applied["time_and_materials"]["old"] == old
    assert applied["time_and_materials"]["new"] == new
    assert [
        (r["period"], r["entry_count"], r["entered_minor"])
        for r in applied["time_and_materials"]["repriced"]
    ] == [("2025-12", 1, {"old": 270_000, "new": 280_000})]

    # Work done in November and booked later into December is priced from the new card.
    late, d3 = await post(
        example,
        entry("n3", "sam", "junior", "2025-11-25", "1", adjustment=True),
        entry("d3", "pat", "senior", "2025-12-16", "1"),
    )
    assert (late["period"], late["rate_minor"], d3["rate_minor"]) == ("2025-12", 12_000, 24_000)
    december = await close(example, "2025-12")
    # 220,000 + 24,000 senior, 60,000 + 12,000 junior: 316,000 topped up to the new 400,000.
    assert sorted((line["kind"], line["amount_minor"]) for line in december["lines"]) == [
        ("minimum_true_up", 84_000),
        ("retention_withheld", -40_000),
        ("time_and_materials", 72_000),
        ("time_and_materials", 244_000),
    ]
    verify = await stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    assert verify.json()["ok"] is True


async def test_an_invalid_change_of_terms_is_refused_and_changes_nothing(stack: Stack):
    example = await hybrid(stack)
    await post(example, entry("d1", "sam", "junior", "2025-12-03", "5"))
    before = (await terms(example), await period(example, "2025-12"))
    seniors_only = [r for r in TERMS["rate_card"] if r["role"] == "senior"]
    for change, field in [
        ({}, "changes.time_and_materials"),
        ({"minimum_minor": 600_000}, "changes.time_and_materials"),  # above the 500,000 cap
        ({"rate_card": None}, "changes.time_and_materials"),
        ({"rate_card": [{"role": "junior", "rate_minor": 1.5}]}, "changes.time_and_materials"),
        ({"period_cap_minor": -1}, "changes.time_and_materials.period_cap_minor"),
        ({"overtime": True}, "changes.time_and_materials.overtime"),
        # The open December has junior time the new card could not price.
        ({"rate_card": seniors_only}, "changes.time_and_materials.rate_card"),
    ]:
        refused = await propose(example, {"time_and_materials": change})
        assert_problem(refused, 422, field)
    assert order_count(example) == 0
    assert (await terms(example), await period(example, "2025-12")) == before
    assert (await example.refresh())["version"] == 1

    # Checked again when signed: junior time posted meanwhile makes the order conflicted.
    await stack.http.delete(
        f"/v1/engagements/{example.engagement['id']}/time-entries/d1", headers=stack.auth()
    )
    proposed = await propose(example, {"time_and_materials": {"rate_card": seniors_only}})
    assert proposed.status_code == 202, proposed.text
    await post(example, entry("d2", "sam", "junior", "2025-12-04", "1"))
    conflicted = await sign_off(example, proposed.json()["run_id"], "conflicted")
    assert "needs a rate for role 'junior'" in conflicted["outcome_detail"]
    assert (await example.refresh())["version"] == 1
    assert await terms(example) == before[0]


async def test_a_change_order_adds_time_and_materials_to_an_engagement_without_them(
    example: Example,
):
    assert example.engagement["time_and_materials"] is None
    refused = await propose(example, {"time_and_materials": {"minimum_minor": 100_000}})
    assert "has no time_and_materials terms" in assert_problem(refused, 422)["detail"]
    proposed = await propose(example, {"time_and_materials": TERMS})
    assert proposed.status_code == 202, proposed.text
    await sign_off(example, proposed.json()["run_id"], "applied")

    assert (await terms(example))["rate_card"][0]["rate_minor"] == 20_000
    assert await terms(example, version=1) is None
    (posted,) = await post(example, entry("t1", "sam", "junior", "2025-12-03", "2"))
    assert posted["amount_minor"] == 20_000


async def test_a_month_awaiting_sign_off_keeps_its_prices_and_open_delays_take_the_new_rate(
    stack: Stack,
):
    example = await signed(stack)
    await post(example, entry("n1", "dana", "senior", "2025-11-03", "8"))  # 200,000 at hers
    close_ = f"/v1/engagements/{example.engagement['id']}/time-periods/2025-11/close"
    assert (await stack.post(close_, {})).status_code == 202
    timesheet = (await period_in(example, "2025-11", "awaiting_approval"))["sign_off_run_id"]
    delay = {
        "external_id": "dl1",
        "kind": "dependency_delay",
        "caused_by": "Acme IT",
        "milestone": "phase-2",
        "business_days": 2,
        "date": "2025-12-02",
    }
    await post(example, delay)  # 2 x 1,200.00

    cleared = await propose(example, {"time_and_materials": {"advisory_rate_minor": None}})
    assert_problem(cleared, 422, "changes.time_and_materials.advisory_rate_minor")
    card = [{"role": "senior", "rate_minor": 20_000, "people": {"dana": 30_000}}]
    change = {"rate_card": card, "advisory_rate_minor": 150_000}
    proposed = await propose(example, {"time_and_materials": change})
    assert proposed.status_code == 202, proposed.text
    await sign_off(example, proposed.json()["run_id"], "applied")

    # November's timesheet is being signed at the prices its signers saw.
    assert amounts(await period_in(example, "2025-11", "awaiting_approval")) == {
        "n1": (25_000, 200_000)
    }
    assert amounts(await period(example, "2025-12")) == {"dl1": (150_000, 300_000)}
    billed = await sign_off(example, timesheet, "billed")
    assert billed["details"]["gross_minor"] == 200_000
    november = await period_in(example, "2025-11", "closed")
    assert sorted((line["kind"], line["amount_minor"]) for line in november["lines"]) == [
        ("retention_withheld", -20_000),
        ("time_and_materials", 200_000),
    ]


async def signed(stack: Stack) -> Example:
    """The hybrid engagement with timesheet sign-off and an advisory rate of 1,200.00 a day."""
    people = {
        name: await stack.principal(name)
        for name in ("lead", "client", "lead_backup", "client_backup")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme", "currency": "USD"})).json()
    body = platform_migration(customer["id"], *(p["id"] for p in people.values()))
    terms_ = {**TERMS, "approval": True, "advisory_rate_minor": 120_000}
    response = await stack.post("/v1/engagements", {**body, "time_and_materials": terms_})
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())
