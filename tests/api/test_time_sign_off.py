"""Timesheet sign-off (``approval: true`` on T&M), over real HTTP on both databases: closing a
month sends its timesheet through the engagement's dual sign-off, the month takes no entries
meanwhile, its lines post only once both roles approve, and a rejection leaves it open (audited)
for an admin to close again."""

import asyncio
from typing import Any

from api.example import platform_migration
from tests.api.problems import assert_problem
from tests.api.test_time_and_materials import TERMS, entry
from tests.conftest_stack import Example, Stack


async def signed(stack: Stack) -> Example:
    people = {
        name: await stack.principal(name) for name in ("lead", "client", "lead_b", "client_b")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme", "currency": "USD"})).json()
    body = platform_migration(customer["id"], *(p["id"] for p in people.values()))
    terms = {**TERMS, "approval": True}
    response = await stack.post("/v1/engagements", {**body, "time_and_materials": terms})
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


async def period_in(example: Example, period: str, *statuses: str) -> dict[str, Any]:
    path = f"/v1/engagements/{example.engagement['id']}/time-periods/{period}"
    for _ in range(300):
        view = (await example.stack.get(path)).json()
        if view["status"] in statuses:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"period {period} never became {statuses}: {view['status']}")


async def audit_kinds(example: Example) -> list[str]:
    path, kinds, cursor = f"/v1/engagements/{example.engagement['id']}/audit", [], None
    while True:
        page = (await example.stack.get(path + (f"?cursor={cursor}" if cursor else ""))).json()
        kinds += [e["kind"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            return kinds


async def test_a_timesheet_bills_only_once_both_roles_sign_it_off(stack: Stack):
    example = await signed(stack)
    eng = example.engagement["id"]
    entries = f"/v1/engagements/{eng}/time-entries"
    period = f"/v1/engagements/{eng}/time-periods/2025-11"
    assert example.engagement["time_and_materials"]["approval"] is True
    posted = await stack.post(entries, entry("n1", "dana", "senior", "2025-11-03", "8"))
    assert posted.status_code == 201, posted.text  # 200,000 at Dana's own rate

    assert (await stack.post(f"{period}/close", {})).status_code == 202
    view = await period_in(example, "2025-11", "awaiting_approval")
    run_id = view["sign_off_run_id"]
    assert run_id == f"timesheet:{eng}:2025-11:1" and view["lines"] == []
    run = await example.wait_for_stage(run_id, "awaiting_approval")
    assert (run["kind"], run["details"]["gross_minor"], run["details"]["entry_count"]) == (
        "timesheet",
        200_000,
        1,
    )
    assert sorted(run["pending_roles"]) == ["client_ap", "delivery_lead"]

    # While it awaits sign-off the month takes no entries; an adjustment books into December.
    late = entry("n2", "sam", "junior", "2025-11-20", "1")
    assert_problem(await stack.post(entries, late), 409)
    moved = await stack.post(entries, {**late, "adjustment": True})
    assert moved.status_code == 201 and moved.json()["period"] == "2025-12"
    # Closing again joins the sign-off rather than asking twice.
    assert (await stack.post(f"{period}/close", {})).status_code == 202
    assert (await period_in(example, "2025-11", "awaiting_approval"))["sign_off_run_id"] == run_id

    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await period_in(example, "2025-11", "awaiting_approval"))["lines"] == []
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    billed = await example.wait_for_stage(run_id, "billed")
    closed = await period_in(example, "2025-11", "closed")
    assert sorted((line["kind"], line["amount_minor"]) for line in closed["lines"]) == [
        ("retention_withheld", -20_000),
        ("time_and_materials", 200_000),
    ]
    assert billed["invoice_id"] == closed["invoice_id"] is not None
    kinds = await audit_kinds(example)
    signed_at = kinds.index("time_period_signed_off")
    assert kinds.index("time_period_sign_off_requested") < signed_at
    assert kinds.count("time_period_closed") == 1


async def test_a_rejected_timesheet_leaves_the_month_open_until_it_is_closed_again(stack: Stack):
    example = await signed(stack)
    eng = example.engagement["id"]
    entries = f"/v1/engagements/{eng}/time-entries"
    period = f"/v1/engagements/{eng}/time-periods/2025-11"
    assert (
        await stack.post(entries, entry("n1", "pat", "senior", "2025-11-03", "8"))
    ).status_code == 201
    assert (await stack.post(f"{period}/close", {})).status_code == 202
    first = (await period_in(example, "2025-11", "awaiting_approval"))["sign_off_run_id"]
    await example.wait_for_stage(first, "awaiting_approval")

    rejected = await example.decide(first, "client_ap", "client", "reject", "8 h is 6 h")
    assert rejected.status_code == 202, rejected.text
    run = await example.wait_for_stage(first, "rejected")
    assert run["outcome"] == "rejected"
    view = await period_in(example, "2025-11", "open")
    assert (view["lines"], view["invoice_id"], view["sign_off_run_id"]) == ([], None, first)
    assert "time_period_sign_off_rejected" in await audit_kinds(example)

    # The month takes entries again: the timesheet is corrected and sent again.
    fix = entry("n1b", "pat", "senior", "2025-11-03", "6", correction_of="n1")
    assert (await stack.post(entries, fix)).status_code == 201
    assert (await stack.post(f"{period}/close", {})).status_code == 202
    view = await period_in(example, "2025-11", "awaiting_approval")
    second = view["sign_off_run_id"]
    assert second == f"timesheet:{eng}:2025-11:2"
    run = await example.wait_for_stage(second, "awaiting_approval")
    assert run["details"]["gross_minor"] == 120_000
