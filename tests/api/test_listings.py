"""Lists: the admin's runs, engagements and customers, filtered; and every list of the API paged
with an opaque cursor in one shape, ``{items, next_cursor}``."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from db.models import Run
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack


async def pages(stack: Stack, path: str, limit: int) -> list[list[dict]]:
    """Every page of a list, following next_cursor to the end."""
    seen, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = await stack.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        seen.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


async def test_runs_are_found_by_engagement_milestone_and_stage(example: Example):
    first = (await example.trigger("phase-1")).json()["run_id"]
    second = (await example.trigger("phase-2")).json()["run_id"]
    await example.wait_for_stage(first, "awaiting_approval")
    await example.wait_for_stage(second, "rejected")  # phase 2's criteria need a KPI
    engagement = example.engagement["id"]

    listed = await example.stack.get(f"/v1/runs?engagement_id={engagement}")
    assert [r["run_id"] for r in listed.json()["items"]] == [first, second]
    item = listed.json()["items"][0]
    assert item["stage"] == "awaiting_approval" and item["kind"] == "milestone"
    assert item["status_url"].endswith(f"/v1/runs/{first}")

    phase2 = example.milestone("phase-2")
    by_milestone = await example.stack.get(f"/v1/runs?milestone_id={phase2}")
    assert [r["run_id"] for r in by_milestone.json()["items"]] == [second]
    rejected = await example.stack.get(f"/v1/runs?engagement_id={engagement}&stage=rejected")
    assert [r["run_id"] for r in rejected.json()["items"]] == [second]
    billed = await example.stack.get(f"/v1/runs?engagement_id={engagement}&stage=billed")
    assert billed.json() == {"items": [], "next_cursor": None}


async def test_runs_older_than_a_span_are_the_ones_created_before_it(example: Example):
    old = (await example.trigger("phase-1")).json()["run_id"]
    new = (await example.trigger("phase-2")).json()["run_id"]
    with example.stack.sessions() as session:
        long_ago = datetime.now(UTC) - timedelta(days=4)
        session.execute(update(Run).where(Run.id == old).values(created_at=long_ago))
        session.commit()
    engagement = example.engagement["id"]
    stuck = await example.stack.get(f"/v1/runs?engagement_id={engagement}&older_than=P3D")
    assert [r["run_id"] for r in stuck.json()["items"]] == [old]
    recent = await example.stack.get(f"/v1/runs?engagement_id={engagement}&older_than=PT1M")
    assert new not in [r["run_id"] for r in recent.json()["items"]]


async def test_paging_through_customers_returns_each_once_in_creation_order(stack: Stack):
    created = []
    for n in range(5):
        response = await stack.post("/v1/customers", {"name": f"Paged {n}", "currency": "EUR"})
        created.append(response.json()["id"])
    seen = [c["id"] for page in await pages(stack, "/v1/customers", 2) for c in page]
    assert [c for c in seen if c in created] == created
    assert len(seen) == len(set(seen))


async def test_engagements_are_listed_for_a_customer(example: Example):
    customer = example.customer["id"]
    listed = await example.stack.get(f"/v1/engagements?customer_id={customer}")
    items = listed.json()["items"]
    assert [(e["id"], e["status"]) for e in items] == [(example.engagement["id"], "active")]
    assert items[0]["name"] == example.engagement["name"]


async def test_lists_are_for_the_admin_only(example: Example):
    for path in ("/v1/runs", "/v1/engagements", "/v1/customers"):
        response = await example.stack.get(path, example.token("lead"))
        assert_problem(response, 403)


async def test_an_audit_trail_pages_in_chain_order_each_event_once(example: Example):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    path = f"/v1/engagements/{example.engagement['id']}/audit"
    for _ in range(200):  # the run reports its stage a moment before the stage's event commits
        whole = (await example.stack.get(f"{path}?limit=200")).json()
        if any(e["kind"] == "stage_changed" for e in whole["items"]):
            break
        await asyncio.sleep(0.05)
    assert whole["next_cursor"] is None and len(whole["items"]) > 3

    paged = [e["seq"] for page in await pages(example.stack, path, 2) for e in page]
    assert paged == [e["seq"] for e in whole["items"]] == sorted(paged)


async def test_notifications_page_with_the_same_opaque_cursor_as_every_list(example: Example):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    path = f"/v1/notifications?run_id={run_id}"
    for _ in range(200):  # the approval requests are written just after the stage is
        if len((await example.stack.get(path)).json()["items"]) >= 2:
            break
        await asyncio.sleep(0.05)
    ids = [n["id"] for page in await pages(example.stack, path, 1) for n in page]
    assert len(ids) >= 2 and ids == sorted(set(ids))


async def test_every_list_of_a_customer_engagement_or_milestone_answers_in_pages(example: Example):
    customer, engagement = example.customer["id"], example.engagement["id"]
    milestone = example.milestone("phase-1")
    for path in (
        f"/v1/customers/{customer}/invoices",
        f"/v1/customers/{customer}/credit-notes",
        f"/v1/engagements/{engagement}/audit",
        f"/v1/milestones/{milestone}/audit",
        f"/v1/engagements/{engagement}/change-orders",
        f"/v1/engagements/{engagement}/sources",
        f"/v1/engagements/{engagement}/trigger-urls",
    ):
        assert await pages(example.stack, path, 200), path


async def test_a_cursor_or_span_the_api_did_not_issue_is_refused(stack: Stack):
    assert_problem(await stack.get("/v1/customers?cursor=not-a-cursor"), 422, "cursor")
    assert_problem(await stack.get("/v1/notifications?cursor=WyJ4Il0="), 422, "cursor")
    assert_problem(await stack.get("/v1/runs?older_than=three-days"), 422, "older_than")
    assert_problem(await stack.get("/v1/runs?limit=0"), 422, "limit")
