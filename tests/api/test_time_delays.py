"""Client-caused delay on a hybrid engagement, over real HTTP on both databases: dependency-delay
entries billed at the advisory rate into a dependency_delay line, the deadlines of the delayed
milestone's bonus moving day-for-day once the delay exceeds the grace (audited, and moved back
when a delay is reversed), a bonus whose deadline moved still qualifying, and bad delays refused
at the door."""

from datetime import UTC, datetime, timedelta
from typing import Any

from api.example import platform_migration
from domain.times import iso
from tests.api.problems import assert_problem
from tests.api.test_time_and_materials import TERMS, close, entry, hybrid
from tests.conftest_stack import Example, Stack

DELAY_TERMS = {**TERMS, "advisory_rate_minor": 120_000, "delay_grace": 3}
# Monday 2 March 2026, 17:00 in New York (the example's calendar: US, America/New_York).
LAUNCH = "2026-03-02T22:00:00.000000Z"


def launch_bonus(deadline: str) -> dict[str, Any]:
    """A bonus of 5% of phase 3's fee if phase 3 launches by ``deadline``."""
    return {
        "key": "launch-bonus",
        "name": "On-time launch bonus",
        "kind": "bonus",
        "fee_minor": None,
        "fee_percent_of": {"milestone": "phase-3", "percent": "5"},
        "trigger": "manual",
        "deadline": deadline,
        "acceptance_criteria": [{"id": "launched", "description": "Launched on time"}],
    }


def delay(external_id: str, milestone: str, days: Any, day: str, **kw: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "kind": "dependency_delay",
        "caused_by": "client IT: VPN access",
        "milestone": milestone,
        "business_days": days,
        "date": day,
        "description": f"waiting on the client, {external_id}",
        **kw,
    }


async def delayed(stack: Stack, deadline: str = LAUNCH) -> Example:
    people = {
        name: await stack.principal(name) for name in ("lead", "client", "lead_b", "client_b")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme", "currency": "USD"})).json()
    body = platform_migration(customer["id"], *(p["id"] for p in people.values()))
    body["milestones"].append(launch_bonus(deadline))
    response = await stack.post("/v1/engagements", {**body, "time_and_materials": DELAY_TERMS})
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


def deadline_of(engagement: dict[str, Any], key: str) -> str | None:
    return next(m["deadline"] for m in engagement["milestones"] if m["key"] == key)


async def moves(example: Example) -> list[dict[str, Any]]:
    """The engagement's ``milestone_deadline_moved`` events, in order (the audit is paged)."""
    path, found, cursor = f"/v1/engagements/{example.engagement['id']}/audit", [], None
    while True:
        page = (await example.stack.get(path + (f"?cursor={cursor}" if cursor else ""))).json()
        found += [e["data"] for e in page["items"] if e["kind"] == "milestone_deadline_moved"]
        if not (cursor := page["next_cursor"]):
            return found


async def test_client_delay_bills_at_the_advisory_rate_and_moves_the_bonus_deadline(stack: Stack):
    example = await delayed(stack)
    eng = example.engagement["id"]
    entries = f"/v1/engagements/{eng}/time-entries"
    assert example.engagement["time_and_materials"]["advisory_rate_minor"] == 120_000
    assert example.engagement["time_and_materials"]["delay_grace"] == 3

    # 2 business days: within the grace of 3, billed but the schedule holds.
    first = await stack.post(entries, delay("d1", "phase-3", 2, "2025-11-10"))
    assert first.status_code == 201, first.text
    shown = first.json()
    assert (shown["entry_kind"], shown["caused_by"], shown["business_days"]) == (
        "dependency_delay",
        "client IT: VPN access",
        2,
    )
    assert (shown["rate_minor"], shown["amount_minor"], shown["milestone"]) == (
        120_000,
        240_000,
        "phase-3",
    )
    assert deadline_of(await example.refresh(), "launch-bonus") == LAUNCH
    assert await moves(example) == []

    # 2 more: 4 in all exceed the grace, so the bonus deadline moves all 4 business days.
    second = await stack.post(entries, delay("d2", "phase-3", 2, "2025-11-17"))
    assert second.status_code == 201, second.text
    moved = "2026-03-06T22:00:00.000000Z"  # Friday, same local time
    assert deadline_of(await example.refresh(), "launch-bonus") == moved
    assert deadline_of(example.engagement, "phase-3") is None  # a standard milestone has none
    (move,) = await moves(example)
    assert (move["milestone"], move["delayed_milestone"], move["from"], move["to"]) == (
        "launch-bonus",
        "phase-3",
        LAUNCH,
        moved,
    )
    assert (move["business_days"], move["delay_business_days"], move["delay_grace"]) == (4, 4, 3)
    assert move["entry_ids"] == sorted([shown["id"], second.json()["id"]])

    # The same body again changes nothing; work next to the delay bills as before.
    again = await stack.post(entries, delay("d1", "phase-3", 2, "2025-11-10"))
    assert again.status_code == 200 and again.json() == shown
    work = await stack.post(entries, entry("w1", "sam", "junior", "2025-11-12", "2"))
    assert work.status_code == 201, work.text

    # Reversing d2 brings the delay back within the grace: the deadline moves back exactly.
    gone = await stack.http.delete(f"{entries}/d2", headers=stack.auth())
    assert gone.status_code == 200, gone.text
    assert (gone.json()["business_days"], gone.json()["amount_minor"]) == (-2, -240_000)
    assert deadline_of(await example.refresh(), "launch-bonus") == LAUNCH
    back = (await moves(example))[-1]
    assert (back["from"], back["to"], back["business_days"]) == (moved, LAUNCH, -4)
    assert back["cause_id"] == gone.json()["id"] and back["entry_ids"] == [shown["id"]]

    november = await close(example, "2025-11")
    lines = sorted((line["kind"], line["amount_minor"]) for line in november["lines"])
    # The delay bills in full; the work (20,000) is topped up to the 100,000 floor and only
    # the work carries retention.
    assert lines == [
        ("dependency_delay", 240_000),
        ("minimum_true_up", 80_000),
        ("retention_withheld", -10_000),
        ("time_and_materials", 20_000),
    ]
    details = next(x["details"] for x in november["lines"] if x["kind"] == "dependency_delay")
    assert details == {
        "period": "2025-11",
        "business_days": 2,
        "entry_count": 3,
        "rates": [{"rate_minor": 120_000, "business_days": 2}],
        "rate_minor": 120_000,
        "amount_minor": 240_000,
    }
    assert (november["delay_minor"], november["delay_business_days"]) == (240_000, 2)
    assert (november["gross_minor"], november["net_minor"]) == (100_000, 330_000)
    description = next(
        x["description"] for x in november["lines"] if x["kind"] == "dependency_delay"
    )
    assert "2 business days x 1,200.00" in description


async def test_a_bonus_whose_deadline_the_client_moved_can_still_qualify(stack: Stack):
    passed = iso(datetime.now(UTC) - timedelta(hours=1))
    example = await delayed(stack, passed)
    eng = example.engagement["id"]
    posted = await stack.post(
        f"/v1/engagements/{eng}/time-entries", delay("d", "phase-3", 5, "2025-11-10")
    )
    assert posted.status_code == 201, posted.text
    deadline = deadline_of(await example.refresh(), "launch-bonus")
    assert deadline is not None and deadline > iso(datetime.now(UTC))

    # The run reads the milestone's deadline when it is triggered: now the moved one.
    response = await example.trigger("launch-bonus", {"kpis": {}})
    assert response.status_code == 202, response.text
    run = await example.wait_for_stage(response.json()["run_id"], "awaiting_approval", "ineligible")
    assert run["stage"] == "awaiting_approval"


async def test_delays_are_checked_at_the_door(stack: Stack):
    example = await delayed(stack)
    path = f"/v1/engagements/{example.engagement['id']}/time-entries"
    for bad, field in [
        (delay("x", "nope", 2, "2025-11-10"), "milestone"),
        (delay("x", "phase-3", 0, "2025-11-10"), "business_days"),
        (delay("x", "phase-3", 261, "2025-11-10"), "business_days"),
        (delay("x", "phase-3", "2", "2025-11-10"), "business_days"),
        (delay("x", "phase-3", 2.5, "2025-11-10"), "business_days"),
        ({**delay("x", "phase-3", 2, "2025-11-10"), "caused_by": ""}, "caused_by"),
        ({**delay("x", "phase-3", 2, "2025-11-10"), "hours": "8"}, "hours"),
        (
            {k: v for k, v in delay("x", "phase-3", 2, "2025-11-10").items() if k != "milestone"},
            "milestone",
        ),
        ({**entry("x", "sam", "junior", "2025-11-10", "1"), "kind": "holiday"}, "kind"),
    ]:
        assert_problem(await stack.post(path, bad), 422, field)
    # A delay cannot correct time worked (nor time worked a delay).
    assert (
        await stack.post(path, entry("w", "sam", "junior", "2025-11-10", "1"))
    ).status_code == 201
    fix = delay("x", "phase-3", 2, "2025-11-10", correction_of="w")
    assert_problem(await stack.post(path, fix), 422, "correction_of")
    view = (await stack.get(f"/v1/engagements/{example.engagement['id']}")).json()
    assert deadline_of(view, "launch-bonus") == LAUNCH

    # No advisory rate in the terms: no delay is accepted.
    plain = await hybrid(stack)
    assert_problem(
        await stack.post(
            f"/v1/engagements/{plain.engagement['id']}/time-entries",
            delay("x", "phase-3", 2, "2025-11-10"),
        ),
        422,
        "kind",
    )
    body = platform_migration(
        plain.customer["id"],
        *(plain.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")),
    )
    for terms in (
        {**TERMS, "advisory_rate_minor": 1.5},
        {**TERMS, "advisory_rate_minor": -1},
        {**TERMS, "advisory_rate_minor": 10**13},
        {**TERMS, "delay_grace": -1},
        {**TERMS, "delay_grace": "3"},
    ):
        response = await stack.post("/v1/engagements", {**body, "time_and_materials": terms})
        assert_problem(response, 422, "time_and_materials")
