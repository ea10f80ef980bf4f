"""Partial (tiered) acceptance over real HTTP: each accepted percent bills up to round(fee *
cumulative percent), the milestone stays partially accepted until 100%, and a percent that is
not above what was accepted is refused without starting anything."""

from typing import Any

from sqlalchemy import func, select

from db.models import InvoiceLine, Run
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

ERRORS_OK = {"error_rate_pct": "0.3"}


async def bill(example: Example, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """Trigger the milestone, have both roles approve, and return the billed run."""
    response = await example.trigger(key, body)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        assert (await example.decide(run_id, role, person)).status_code == 202
    return await example.wait_for_stage(run_id, "billed")


async def phase(example: Example, key: str) -> dict[str, Any]:
    engagement = await example.refresh()
    return next(m for m in engagement["milestones"] if m["key"] == key)


def runs_of(example: Example, milestone_id: str) -> int:
    with example.stack.sessions() as session:
        count = select(func.count()).select_from(Run).where(Run.milestone_id == milestone_id)
        return session.scalar(count) or 0


async def test_ninety_then_a_hundred_percent_bill_exactly_the_fee_with_retention_on_each(
    example: Example,
):
    await bill(example, "phase-1", {"kpis": {"p95_latency_ms": "212"}})

    first = await bill(example, "phase-2", {"completion_percent": "90", "kpis": ERRORS_OK})
    assert first["amounts"] == {
        "gross_minor": 3_600_000,
        "retention_minor": 360_000,
        "net_minor": 3_240_000,
    }
    state = await phase(example, "phase-2")
    assert (state["status"], state["accepted_percent"]) == ("partially_accepted", "90")
    assert (state["billed_minor"], state["retention_held_minor"]) == (3_600_000, 360_000)

    second = await bill(example, "phase-2", {"completion_percent": "100", "kpis": ERRORS_OK})
    assert second["amounts"] == {
        "gross_minor": 400_000,
        "retention_minor": 40_000,
        "net_minor": 360_000,
    }
    state = await phase(example, "phase-2")
    assert (state["status"], state["accepted_percent"]) == ("accepted", "100")
    assert (state["billed_minor"], state["retention_held_minor"]) == (4_000_000, 400_000)

    with example.stack.sessions() as session:
        lines = session.scalars(
            select(InvoiceLine).where(InvoiceLine.milestone_id == state["id"])
        ).all()
    assert sorted((line.kind, line.amount_minor) for line in lines) == [
        ("milestone", 400_000),
        ("milestone", 3_600_000),
        ("retention_withheld", -360_000),
        ("retention_withheld", -40_000),
    ]


async def test_a_percent_not_above_what_is_accepted_is_a_conflict_and_starts_nothing(
    example: Example,
):
    await bill(example, "phase-1", {"kpis": {"p95_latency_ms": "212"}})
    await bill(example, "phase-2", {"completion_percent": "90", "kpis": ERRORS_OK})
    milestone_id = example.milestone("phase-2")
    before = runs_of(example, milestone_id)

    for percent in ("90", "45.5"):
        response = await example.trigger(
            "phase-2", {"completion_percent": percent, "kpis": ERRORS_OK}
        )
        problem = assert_problem(response, 409)
        assert problem["type"].endswith("percent-not-above-accepted")
        assert "90%" in problem["detail"]

    assert runs_of(example, milestone_id) == before
    state = await phase(example, "phase-2")
    assert (state["status"], state["accepted_percent"], state["open_run_id"]) == (
        "partially_accepted",
        "90",
        None,
    )


async def test_a_milestone_without_allow_partial_refuses_less_than_100_percent(example: Example):
    problem = assert_problem(await example.trigger("phase-1", {"completion_percent": "50"}), 422)
    assert problem["errors"][0]["field"] == "completion_percent"
    assert "does not allow partial" in problem["errors"][0]["message"]
    assert runs_of(example, example.milestone("phase-1")) == 0
