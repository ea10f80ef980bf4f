"""Bonus and success-fee milestones over real HTTP: their terms are validated field by field and
create nothing when wrong, a bonus's fee may be a percent of another milestone's, a bonus
triggered after its deadline closes ineligible, and a success fee bills what the trigger's
measurement earns, clamped, with the computation on the invoice line and in the audit trail."""

import copy
from typing import Any

import pytest
from sqlalchemy import func, select

from api.example import platform_migration
from db.models import Engagement, Milestone, Run, Trigger
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack

ERROR_RATE_KPI = {"metric": "error_rate_pct", "op": "<=", "threshold": "0.5"}
LAUNCH_BONUS: dict[str, Any] = {
    "key": "launch-bonus",
    "name": "Launch quality bonus",
    "kind": "bonus",
    "fee_minor": 500_000,
    "trigger": "automatic",
    "acceptance_criteria": [
        {"id": "errors", "description": "Error rate at launch", **ERROR_RATE_KPI}
    ],
    "clawback": {"window": {"duration": "P90D"}, "kpi": ERROR_RATE_KPI, "percent": "100"},
}
GROWTH_FEE: dict[str, Any] = {
    "key": "growth",
    "name": "Revenue growth success fee",
    "kind": "success_fee",
    "trigger": "manual",
    "success_fee": {
        "percent": "15",
        "metric": "monthly_revenue",
        "baseline": "120000.00",
        "cap_minor": 1_000_000,
        "floor_minor": 100_000,
    },
}


def engagement_body(example: Example, *extra: dict[str, Any]) -> dict[str, Any]:
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    body = platform_migration(example.customer["id"], *people)
    body["milestones"] += [copy.deepcopy(m) for m in extra]
    return body


async def engage(example: Example, *extra: dict[str, Any]) -> dict[str, Any]:
    """A new engagement with these milestones after the example's three; becomes the example's."""
    response = await example.stack.post("/v1/engagements", engagement_body(example, *extra))
    assert response.status_code == 201, response.text
    example.engagement = response.json()
    return example.engagement


def milestone_view(engagement: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in engagement["milestones"] if m["key"] == key)


def counts(stack: Stack, *models: type) -> list[int]:
    with stack.sessions() as session:
        return [session.scalar(select(func.count()).select_from(m)) or 0 for m in models]


async def audit(example: Example, milestone_id: str) -> list[dict[str, Any]]:
    response = await example.stack.get(f"/v1/milestones/{milestone_id}/audit?limit=200")
    assert response.status_code == 200, response.text
    return response.json()["items"]


B = ("milestones", 3)
# (case, the fourth milestone, field the 422 names)
INVALID_MILESTONES: list[tuple[str, dict[str, Any], str]] = [
    ("bonus with no fee", {**LAUNCH_BONUS, "fee_minor": None}, "milestones.3.fee_percent_of"),
    (
        "bonus with both fees",
        {**LAUNCH_BONUS, "fee_percent_of": {"milestone": "phase-2", "percent": "5"}},
        "milestones.3.fee_percent_of",
    ),
    (
        "fee_percent_of on a standard milestone",
        {"key": "x", "name": "X", "fee_percent_of": {"milestone": "phase-1", "percent": "5"}},
        "milestones.3.fee_percent_of",
    ),
    (
        "fee_percent_of an unknown milestone",
        {**LAUNCH_BONUS, "fee_minor": None, "fee_percent_of": {"milestone": "x", "percent": "5"}},
        "milestones",
    ),
    (
        "fee_percent_of another bonus",
        {
            **LAUNCH_BONUS,
            "fee_minor": None,
            "fee_percent_of": {"milestone": "launch-bonus", "percent": "5"},
        },
        "milestones",
    ),
    (
        "fee_percent_of zero percent",
        {
            **LAUNCH_BONUS,
            "fee_minor": None,
            "fee_percent_of": {"milestone": "phase-1", "percent": "0"},
        },
        "milestones.3.fee_percent_of.percent",
    ),
    (
        "deadline on a standard milestone",
        {"key": "x", "name": "X", "fee_minor": 1, "deadline": "2026-09-01T00:00:00Z"},
        "milestones.3.deadline",
    ),
    (
        "deadline without a time zone",
        {**LAUNCH_BONUS, "deadline": "2026-09-01T00:00:00"},
        "milestones.3.deadline",
    ),
    (
        "clawback on a standard milestone",
        {"key": "x", "name": "X", "fee_minor": 1, "clawback": LAUNCH_BONUS["clawback"]},
        "milestones.3.clawback",
    ),
    (
        "clawback without a window",
        {**LAUNCH_BONUS, "clawback": {"kpi": ERROR_RATE_KPI}},
        "milestones.3.clawback.window",
    ),
    (
        "clawback of zero percent",
        {**LAUNCH_BONUS, "clawback": {**LAUNCH_BONUS["clawback"], "percent": "0"}},
        "milestones.3.clawback.percent",
    ),
    (
        "clawback of 101 percent",
        {**LAUNCH_BONUS, "clawback": {**LAUNCH_BONUS["clawback"], "percent": "101"}},
        "milestones.3.clawback.percent",
    ),
    (
        "clawback KPI with a float threshold",
        {
            **LAUNCH_BONUS,
            "clawback": {**LAUNCH_BONUS["clawback"], "kpi": {**ERROR_RATE_KPI, "threshold": 0.5}},
        },
        "milestones.3.clawback.kpi.threshold",
    ),
    (
        "partial acceptance under clawback",
        {**LAUNCH_BONUS, "allow_partial": True},
        "milestones.3.allow_partial",
    ),
    ("success fee with a fee", {**GROWTH_FEE, "fee_minor": 1}, "milestones.3.fee_minor"),
    ("success fee without terms", {**GROWTH_FEE, "success_fee": None}, "milestones.3.success_fee"),
    (
        "success-fee terms on a bonus",
        {**LAUNCH_BONUS, "success_fee": GROWTH_FEE["success_fee"]},
        "milestones.3.success_fee",
    ),
    (
        "success-fee baseline finer than the currency",
        {**GROWTH_FEE, "success_fee": {**GROWTH_FEE["success_fee"], "baseline": "1.001"}},
        "milestones",
    ),
    (
        "success-fee floor above its cap",
        {**GROWTH_FEE, "success_fee": {**GROWTH_FEE["success_fee"], "floor_minor": 2_000_000}},
        "milestones",
    ),
    (
        "success-fee unknown term",
        {**GROWTH_FEE, "success_fee": {**GROWTH_FEE["success_fee"], "cap": 1}},
        "milestones",
    ),
    ("partial success fee", {**GROWTH_FEE, "allow_partial": True}, "milestones.3.allow_partial"),
    ("unknown kind", {**GROWTH_FEE, "kind": "royalty"}, "milestones.3.kind"),
]


@pytest.mark.parametrize(
    ("milestone", "field"), [pytest.param(m, f, id=case) for case, m, f in INVALID_MILESTONES]
)
async def test_invalid_bonus_or_success_fee_terms_are_refused_naming_the_field(
    example: Example, milestone: dict[str, Any], field: str
):
    before = counts(example.stack, Engagement, Milestone)
    body = engagement_body(example, milestone)
    assert_problem(await example.stack.post("/v1/engagements", body), 422, field)
    assert counts(example.stack, Engagement, Milestone) == before


async def test_a_refused_fee_basis_says_which_milestone_and_why(example: Example):
    bonus = {
        **LAUNCH_BONUS,
        "fee_minor": None,
        "fee_percent_of": {"milestone": "nope", "percent": "5"},
    }
    problem = assert_problem(
        await example.stack.post("/v1/engagements", engagement_body(example, bonus)), 422
    )
    assert "milestones.3.fee_percent_of: unknown milestone 'nope'" in problem["detail"]


async def test_a_bonus_of_a_percent_of_another_fee_is_resolved_when_created(example: Example):
    bonus = {
        **LAUNCH_BONUS,
        "fee_minor": None,
        "fee_percent_of": {"milestone": "phase-2", "percent": "5"},
        "deadline": "2026-09-01T12:00:00+02:00",
    }
    engagement = await engage(example, bonus)

    shown = milestone_view(engagement, "launch-bonus")
    assert (shown["kind"], shown["fee_minor"]) == ("bonus", 200_000)  # 5% of 40,000.00
    assert shown["fee_basis"] == {"milestone": "phase-2", "percent": "5"}
    assert shown["deadline"] == "2026-09-01T10:00:00.000000Z"
    assert shown["clawback"] == {
        "window": {"duration": "P90D"},
        "kpi": ERROR_RATE_KPI,
        "percent": "100",
    }
    assert milestone_view(engagement, "phase-2")["kind"] == "standard"
    again = await example.stack.get(f"/v1/engagements/{engagement['id']}")
    assert milestone_view(again.json(), "launch-bonus") == shown


async def test_a_bonus_triggered_after_its_deadline_is_recorded_and_closes_ineligible(
    example: Example,
):
    await engage(example, {**LAUNCH_BONUS, "deadline": "2020-01-01T00:00:00Z"})

    response = await example.trigger("launch-bonus", {"kpis": {"error_rate_pct": "0.3"}})

    assert response.status_code == 202, response.text
    run = await example.wait_for_stage(response.json()["run_id"], "ineligible")
    assert run["outcome"] == "deadline_passed"
    assert "after the deadline 2020-01-01T00:00:00.000000Z" in run["outcome_detail"]
    state = milestone_view(await example.refresh(), "launch-bonus")
    assert (state["status"], state["billed_minor"]) == ("ineligible", 0)
    kinds = [e["kind"] for e in await audit(example, state["id"])]
    assert kinds == ["trigger_received", "criteria_evaluated", "run_closed"]


@pytest.mark.parametrize(
    ("measured", "billed", "clamped", "says"),
    [
        ("250000.00", 1_000_000, "cap", "= 19,500.00 USD, capped at 10,000.00 USD"),
        ("121000.00", 100_000, "floor", "= 150.00 USD, raised to the floor of 1,000.00 USD"),
        ("180000.00", 900_000, None, "= 9,000.00 USD"),
    ],
)
async def test_a_success_fee_bills_what_the_measurement_earns_clamped_and_explained(
    example: Example, measured: str, billed: int, clamped: str | None, says: str
):
    await engage(example, GROWTH_FEE)
    response = await example.trigger("growth", {"kpis": {"monthly_revenue": measured}})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert status["amounts"]["gross_minor"] == billed
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    status = await example.wait_for_stage(run_id, "billed")

    invoice = (await example.stack.get(f"/v1/invoices/{status['invoice_id']}")).json()
    lines = {line["kind"]: line for line in invoice["lines"] if line["run_id"] == run_id}
    fee = lines["milestone"]
    assert fee["amount_minor"] == billed
    assert lines["retention_withheld"]["amount_minor"] == -billed // 10
    times, minus = "\N{MULTIPLICATION SIGN}", "\N{MINUS SIGN}"
    expected = f"15% {times} ({measured} {minus} 120000.00 monthly_revenue) {says}"
    assert fee["description"].endswith(expected)
    assert fee["details"]["amount_minor"] == billed
    assert (fee["details"]["measured"], fee["details"]["clamped"]) == (measured, clamped)
    state = milestone_view(await example.refresh(), "growth")
    assert (state["fee_minor"], state["billed_minor"], state["status"]) == (
        billed,
        billed,
        "accepted",
    )
    computed = [e for e in await audit(example, state["id"]) if e["kind"] == "success_fee_computed"]
    assert len(computed) == 1
    assert computed[0]["data"]["explanation"] == expected
    assert (computed[0]["data"]["baseline"], computed[0]["data"]["cap_minor"]) == (
        "120000.00",
        1_000_000,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kpis": {"p95_latency_ms": "200"}}, "kpis.monthly_revenue"),
        ({"kpis": {"monthly_revenue": "1.5e5"}}, "kpis.monthly_revenue"),
        ({"kpis": {"monthly_revenue": 150000.5}}, "kpis.monthly_revenue"),
        ({"kpis": {"monthly_revenue": "150000"}, "completion_percent": "50"}, "completion_percent"),
    ],
)
async def test_a_success_fee_trigger_without_a_billable_measurement_is_refused_and_starts_nothing(
    example: Example, body: dict[str, Any], field: str
):
    engagement = await engage(example, GROWTH_FEE)
    before = counts(example.stack, Run, Trigger)

    assert_problem(await example.trigger("growth", body), 422, field)

    assert counts(example.stack, Run, Trigger) == before
    state = milestone_view(
        (await example.stack.get(f"/v1/engagements/{engagement['id']}")).json(), "growth"
    )
    assert (state["status"], state["open_run_id"]) == ("pending", None)
