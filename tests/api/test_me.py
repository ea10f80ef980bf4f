"""An approver's own to-do list: the runs waiting for a role it holds, each with its signed link."""

from urllib.parse import urlsplit

from tests.api.problems import assert_problem
from tests.conftest_stack import Example


async def approvals(example: Example, person: str) -> list[dict]:
    response = await example.stack.get("/v1/me/approvals", example.token(person))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_an_approver_sees_its_pending_sign_off_with_a_link_that_opens_the_page(
    example: Example,
):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")

    [item] = await approvals(example, "client")
    assert (item["run_id"], item["role"], item["as"]) == (run_id, "client_ap", "approver")
    assert item["title"] == "phase-1: Assessment and cutover plan"
    assert item["link_expires_at"] == item["deadlines"]["expire_at"]
    page = await example.stack.http.get(urlsplit(item["link"]).path)
    assert page.status_code == 200
    assert "Assessment and cutover plan" in page.text and 'id="decide"' in page.text

    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    assert await approvals(example, "client") == []
    assert [i["role"] for i in await approvals(example, "lead")] == ["delivery_lead"]


async def test_escalation_contacts_and_strangers_have_nothing_to_decide_before_escalation(
    example: Example,
):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert await approvals(example, "client_backup") == []
    assert await approvals(example, "stranger") == []


async def test_a_change_order_waits_in_the_same_list_as_the_milestone_runs_oldest_first(
    example: Example,
):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    changes = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}
    order_run = (await example.awaiting_change_order(changes, "Second window"))["run_id"]

    listed = [(i["run_id"], i["kind"], i["role"]) for i in await approvals(example, "client")]
    assert listed == [(run_id, "milestone", "client_ap"), (order_run, "change_order", "client_ap")]
    assert await approvals(example, "stranger") == []


async def test_the_list_is_for_approvers_tokens_only(example: Example):
    assert_problem(await example.stack.get("/v1/me/approvals"), 403)
