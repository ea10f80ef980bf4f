"""Bounded at the door (issue 7, reproduction 3): amounts that could overflow a BIGINT sum, a
success fee measured as thirty 9s, and KPI payloads beyond their bounds are 422 problems naming
the field, and change nothing; the largest amounts allowed bill, over real HTTP."""

import copy
from typing import Any

import pytest
from sqlalchemy import func, select

from api.example import platform_migration
from db.models import ChangeOrder, CreditNote, Engagement, Milestone, Trigger
from domain.bounds import MAX_AMOUNT_MINOR, MAX_DECIMAL_CHARS, MAX_KPIS
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack

BIGINT_MAX = 2**63 - 1
GROWTH_FEE: dict[str, Any] = {
    "key": "growth",
    "name": "Revenue growth success fee",
    "kind": "success_fee",
    "success_fee": {"percent": "15", "metric": "monthly_revenue", "baseline": "120000.00"},
}


def counts(stack: Stack, *models: type) -> list[int]:
    with stack.sessions() as session:
        return [session.scalar(select(func.count()).select_from(m)) or 0 for m in models]


def engagement_body(example: Example, milestones: list[dict[str, Any]]) -> dict[str, Any]:
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    body = platform_migration(example.customer["id"], *people)
    body["milestones"] = copy.deepcopy(milestones)
    return body


async def engage(example: Example, milestones: list[dict[str, Any]]) -> None:
    response = await example.stack.post("/v1/engagements", engagement_body(example, milestones))
    assert response.status_code == 201, response.text
    example.engagement = response.json()


@pytest.mark.parametrize(
    ("milestone", "field"),
    [
        ({"key": "a", "name": "A", "fee_minor": BIGINT_MAX}, "milestones.0.fee_minor"),
        ({"key": "a", "name": "A", "fee_minor": MAX_AMOUNT_MINOR + 1}, "milestones.0.fee_minor"),
        (
            {**GROWTH_FEE, "success_fee": {**GROWTH_FEE["success_fee"], "cap_minor": BIGINT_MAX}},
            "milestones",
        ),
        (
            {**GROWTH_FEE, "success_fee": {**GROWTH_FEE["success_fee"], "baseline": "9" * 30}},
            "milestones",
        ),
    ],
    ids=["fee at 2^63-1", "fee one above the maximum", "cap at 2^63-1", "baseline of 30 nines"],
)
async def test_an_amount_beyond_the_maximum_is_refused_naming_its_field_and_creates_nothing(
    example: Example, milestone: dict[str, Any], field: str
) -> None:
    before = counts(example.stack, Engagement, Milestone)

    response = await example.stack.post("/v1/engagements", engagement_body(example, [milestone]))

    body = assert_problem(response, 422, field)
    assert str(MAX_AMOUNT_MINOR) in body["detail"] or "less than or equal" in body["detail"]
    assert counts(example.stack, Engagement, Milestone) == before


async def test_two_milestones_at_the_maximum_fee_on_one_customer_both_bill(example: Example):
    await engage(example, [{"key": k, "name": k, "fee_minor": MAX_AMOUNT_MINOR} for k in "ab"])
    retention = MAX_AMOUNT_MINOR // 10

    for key in ("a", "b"):
        response = await example.trigger(key)
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        await example.wait_for_stage(run_id, "awaiting_approval")
        for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
            assert (await example.decide(run_id, role, person)).status_code == 202
        billed = await example.wait_for_stage(run_id, "billed", "failed")
        assert billed["stage"] == "billed", billed

    path = f"/v1/customers/{example.customer['id']}/invoices"
    invoices = (await example.stack.get(path)).json()["items"]
    assert [(i["status"], i["total_minor"]) for i in invoices] == [
        ("draft", 2 * (MAX_AMOUNT_MINOR - retention))
    ]


async def test_a_success_fee_measured_as_thirty_nines_is_refused_at_the_door(example: Example):
    await engage(example, [GROWTH_FEE])
    before = counts(example.stack, Trigger)

    response = await example.trigger("growth", {"kpis": {"monthly_revenue": "9" * 30}})

    body = assert_problem(response, 422, "kpis.monthly_revenue")
    assert str(MAX_AMOUNT_MINOR) in body["detail"]
    assert counts(example.stack, Trigger) == before
    milestone = next(m for m in example.engagement["milestones"] if m["key"] == "growth")
    assert milestone["status"] == "pending"


async def test_a_success_fee_that_would_earn_more_than_the_maximum_is_refused_unless_capped(
    example: Example,
):
    terms = {"percent": "100", "metric": "revenue", "baseline": "-10000000000000.00"}
    uncapped = {**GROWTH_FEE, "key": "uncapped", "success_fee": terms}
    capped = {**uncapped, "key": "capped", "success_fee": {**terms, "cap_minor": MAX_AMOUNT_MINOR}}
    await engage(example, [uncapped, capped])
    before = counts(example.stack, Trigger)
    kpis = {"kpis": {"revenue": "10000000000000.00"}}  # twice the maximum above the baseline

    refused = await example.trigger("uncapped", kpis)
    billed_at_the_cap = await example.trigger("capped", kpis)

    assert "cap_minor" in assert_problem(refused, 422, "kpis.revenue")["detail"]
    assert billed_at_the_cap.status_code == 202, billed_at_the_cap.text
    assert counts(example.stack, Trigger) == [before[0] + 1]


@pytest.mark.parametrize(
    ("kpis", "field"),
    [
        ({f"k{n}": "1" for n in range(MAX_KPIS + 1)}, "kpis"),
        ({"error_rate_pct": "1" * (MAX_DECIMAL_CHARS + 1)}, "kpis.error_rate_pct"),
        ({"error_rate_pct": 10**MAX_DECIMAL_CHARS}, "kpis.error_rate_pct"),
        ({"x" * 101: "1"}, "kpis"),
    ],
    ids=["too many KPIs", "a value too long", "an integer too large", "a name too long"],
)
async def test_a_kpi_payload_beyond_its_bounds_is_refused_and_records_no_trigger(
    example: Example, kpis: dict[str, Any], field: str
) -> None:
    before = counts(example.stack, Trigger)

    response = await example.trigger("phase-1", {"kpis": kpis})

    assert_problem(response, 422, field)
    assert counts(example.stack, Trigger) == before


async def test_a_change_order_raising_a_fee_beyond_the_maximum_is_refused(example: Example):
    before = counts(example.stack, ChangeOrder)
    changes = {"update": [{"milestone": "phase-3", "fee_minor": BIGINT_MAX}]}
    path = f"/v1/engagements/{example.engagement['id']}/change-orders"

    response = await example.stack.post(path, {"reason": "More", "changes": changes})

    assert_problem(response, 422, "changes.update.0.fee_minor")
    assert counts(example.stack, ChangeOrder) == before


async def test_a_credit_note_line_beyond_the_maximum_is_refused(example: Example):
    before = counts(example.stack, CreditNote)
    body = {
        "reason": "Goodwill",
        "lines": [{"invoice_line_id": "lin_x", "amount_minor": BIGINT_MAX}],
    }

    response = await example.stack.post("/v1/invoices/inv_x/credit-notes", body)

    assert_problem(response, 422, "lines.0.amount_minor")
    assert counts(example.stack, CreditNote) == before
