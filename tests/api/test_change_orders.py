"""Change orders over real HTTP: proposed, signed off through /v1/runs/{id}/decisions, applied as
a new engagement version; every refused proposal changes nothing."""

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from config import Settings
from db.models import ChangeOrder, Engagement, Milestone, Run
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

RAISE_PHASE_3 = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}
REASON = "Production cutover needs a second weekend window"


async def propose(
    example: Example, changes: Any, reason: Any = REASON, token: str | None = None
) -> httpx.Response:
    path = f"/v1/engagements/{example.engagement['id']}/change-orders"
    return await example.stack.post(path, {"reason": reason, "changes": changes}, token)


def counts(example: Example) -> tuple[int, int, int]:
    """Change orders, runs and milestones of the example engagement."""
    engagement_id = example.engagement["id"]
    with example.stack.sessions() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(
                select(func.count()).select_from(model).where(model.engagement_id == engagement_id)
            )
            or 0
            for model in (ChangeOrder, Run, Milestone)
        )


async def fee(example: Example, key: str, version: int | None = None) -> int:
    query = "" if version is None else f"?version={version}"
    response = await example.stack.get(f"/v1/engagements/{example.engagement['id']}{query}")
    assert response.status_code == 200, response.text
    return next(m["fee_minor"] for m in response.json()["milestones"] if m["key"] == key)


async def sign_off(example: Example, run_id: str, stage: str) -> dict[str, Any]:
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        response = await example.decide(run_id, role, person)
        assert response.status_code == 202, response.text
    return await example.wait_for_stage(run_id, stage)


async def test_raising_phase_3_before_it_is_triggered_applies_as_version_two_after_both_sign_offs(
    example: Example,
):
    response = await propose(example, RAISE_PHASE_3)
    assert response.status_code == 202, response.text
    proposed = response.json()
    assert (proposed["status"], proposed["base_version"]) == ("proposed", 1)
    assert proposed["status_url"].endswith(f"/v1/runs/{proposed['run_id']}")
    assert proposed["change_order_url"].endswith(f"/v1/change-orders/{proposed['id']}")
    waiting = await example.wait_for_stage(proposed["run_id"], "awaiting_approval")
    assert (waiting["kind"], waiting["details"]["change_order_id"]) == (
        "change_order",
        proposed["id"],
    )
    assert await fee(example, "phase-3") == 3_000_000  # nothing changes before sign-off

    applied = await sign_off(example, proposed["run_id"], "applied")

    assert applied["details"] == {
        "change_order_id": proposed["id"],
        "status": "applied",
        "version": 2,
    }
    engagement = await example.refresh()
    assert engagement["version"] == 2
    assert await fee(example, "phase-3") == 3_200_000
    assert await fee(example, "phase-3", version=1) == 3_000_000
    assert await fee(example, "phase-3", version=2) == 3_200_000
    order = (await example.stack.get(f"/v1/change-orders/{proposed['id']}")).json()
    assert (order["status"], order["version"], order["reason"]) == ("applied", 2, REASON)
    assert order["changes"]["update"] == RAISE_PHASE_3["update"]
    assert order["decided_at"] is not None
    listed = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/change-orders")
    assert listed.json()["next_cursor"] is None
    assert [o["id"] for o in listed.json()["items"]] == [proposed["id"]]

    audit = (
        await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    ).json()["items"]
    trail = [(e["kind"], e["data"].get("role")) for e in audit if e["run_id"] == proposed["run_id"]]
    assert trail == [
        ("change_order_proposed", None),
        ("stage_changed", None),
        ("decision", "delivery_lead"),
        ("decision", "client_ap"),
        ("change_order_applied", None),
    ]
    applied_event = audit[-1]
    assert applied_event["data"]["updated"][0]["changes"]["fee_minor"] == {
        "old": 3_000_000,
        "new": 3_200_000,
    }
    verify = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    assert verify.json()["ok"] is True
    late = await example.decide(proposed["run_id"], "client_ap", "client")
    assert_problem(late, 409)


async def test_a_run_in_flight_keeps_its_terms_and_its_milestone_cannot_be_changed(
    example: Example,
):
    run_id = (await example.trigger("phase-1", {"kpis": {"p95_latency_ms": "212"}})).json()[
        "run_id"
    ]
    await example.wait_for_stage(run_id, "awaiting_approval")
    before = counts(example)
    refused = await propose(example, {"update": [{"milestone": "phase-1", "fee_minor": 1}]})
    problem = assert_problem(refused, 409)
    assert "phase-1 has an open run" in problem["detail"]
    assert counts(example) == before

    changes = {
        "update": [{"milestone": "phase-2", "fee_minor": 4_500_000}],
        "add": [{"key": "hypercare", "name": "Hypercare", "fee_minor": 500_000}],
    }
    order = (await propose(example, changes)).json()
    await sign_off(example, order["run_id"], "applied")
    billed = await sign_off(example, run_id, "billed")

    assert billed["amounts"]["gross_minor"] == 3_000_000
    engagement = await example.refresh()
    assert engagement["version"] == 2
    by_key = {m["key"]: m for m in engagement["milestones"]}
    assert (by_key["phase-1"]["status"], by_key["phase-1"]["billed_minor"]) == (
        "accepted",
        3_000_000,
    )
    assert (by_key["phase-2"]["fee_minor"], by_key["hypercare"]["fee_minor"]) == (
        4_500_000,
        500_000,
    )
    again = await propose(example, {"remove": ["phase-1"]})
    assert "phase-1 is already billed" in assert_problem(again, 409)["detail"]


async def test_a_removed_milestone_is_shown_as_removed_and_takes_no_triggers(example: Example):
    order = (await propose(example, {"remove": ["phase-3"]})).json()
    await sign_off(example, order["run_id"], "applied")

    phase3 = next(m for m in (await example.refresh())["milestones"] if m["key"] == "phase-3")
    assert phase3["status"] == "removed"
    problem = assert_problem(await example.trigger("phase-3"), 409)
    assert problem["type"].endswith("milestone-removed")
    with example.stack.sessions() as session:
        runs = select(func.count()).select_from(Run).where(Run.milestone_id == phase3["id"])
        assert session.scalar(runs) == 0


async def test_a_bonus_added_by_one_change_order_has_its_deadline_moved_by_the_next(
    example: Example,
):
    bonus = {
        "key": "early-cutover",
        "name": "Cutover before the holiday freeze",
        "kind": "bonus",
        "fee_percent_of": {"milestone": "phase-3", "percent": "5"},
        "deadline": "2026-11-20T17:00:00Z",
        "depends_on": [{"milestone": "phase-3"}],
    }
    first = (await propose(example, {"add": [bonus]})).json()
    await sign_off(example, first["run_id"], "applied")
    moved = {"update": [{"milestone": "early-cutover", "deadline": "2026-12-04T17:00:00Z"}]}
    second = (await propose(example, moved, "Freeze moved by two weeks")).json()
    await sign_off(example, second["run_id"], "applied")

    engagement = await example.refresh()
    added = next(m for m in engagement["milestones"] if m["key"] == "early-cutover")
    assert engagement["version"] == 3
    assert (added["kind"], added["fee_minor"], added["depends_on"][0]["milestone"]) == (
        "bonus",
        150_000,
        "phase-3",
    )
    assert added["deadline"].startswith("2026-12-04T17:00:00")
    before = await example.stack.get(f"/v1/engagements/{example.engagement['id']}?version=2")
    earlier = next(m for m in before.json()["milestones"] if m["key"] == "early-cutover")
    assert earlier["deadline"].startswith("2026-11-20T17:00:00")


async def test_a_rejected_change_order_changes_nothing(example: Example):
    order = (await propose(example, RAISE_PHASE_3)).json()
    await example.wait_for_stage(order["run_id"], "awaiting_approval")
    response = await example.decide(order["run_id"], "client_ap", "client", "reject", "Too dear")
    assert response.status_code == 202, response.text
    closed = await example.wait_for_stage(order["run_id"], "rejected")

    assert closed["details"]["status"] == "rejected"
    assert (await example.refresh())["version"] == 1
    assert await fee(example, "phase-3") == 3_000_000
    body = (await example.stack.get(f"/v1/change-orders/{order['id']}")).json()
    assert (body["status"], body["version"]) == ("rejected", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "", "changes": RAISE_PHASE_3}, "reason"),
        ({"reason": "   ", "changes": RAISE_PHASE_3}, "reason"),
        ({"reason": "x" * 2001, "changes": RAISE_PHASE_3}, "reason"),
        ({"changes": RAISE_PHASE_3}, "reason"),
        ({"reason": REASON}, "changes"),
        ({"reason": REASON, "changes": {}}, "changes"),
        ({"reason": REASON, "changes": {"rename": []}}, "changes.rename"),
        ({"reason": REASON, "changes": {"remove": ["phase-9"]}}, "changes.remove.0"),
        (
            {"reason": REASON, "changes": {"update": [{"milestone": "phase-9", "fee_minor": 1}]}},
            "changes.update.0.milestone",
        ),
        (
            {"reason": REASON, "changes": {"update": [{"milestone": "phase-3", "fee_minor": -1}]}},
            "changes.update.0.fee_minor",
        ),
        (
            {"reason": REASON, "changes": {"update": [{"milestone": "phase-3", "fee_minor": 1.5}]}},
            "changes.update.0.fee_minor",
        ),
        (
            {
                "reason": REASON,
                "changes": {"update": [{"milestone": "phase-3", "fee_minor": None}]},
            },
            "changes.update.0",
        ),
        ({"reason": REASON, "changes": {"update": [{"milestone": "phase-3"}]}}, "changes.update.0"),
        (
            {
                "reason": REASON,
                "changes": {
                    "update": [{"milestone": "phase-3", "deadline": "2026-09-30T17:00:00Z"}]
                },
            },
            "changes.update.0.deadline",
        ),
        (
            {"reason": REASON, "changes": {"update": [{"milestone": "phase-3", "deadline": 17}]}},
            "changes.update.0.deadline",
        ),
        (
            {
                "reason": REASON,
                "changes": {"add": [{"key": "phase-2", "name": "x", "fee_minor": 1}]},
            },
            "changes.add.0.key",
        ),
        (
            {
                "reason": REASON,
                "changes": {"add": [{"key": "phase-4", "name": "x", "fee_minor": -5}]},
            },
            "changes.add.0.fee_minor",
        ),
        ({"reason": REASON, "changes": {"remove": ["phase-2"]}}, "changes.remove.0"),
        (
            {
                "reason": REASON,
                "changes": {
                    "update": [{"milestone": "phase-1", "depends_on": [{"milestone": "phase-3"}]}]
                },
            },
            "changes",
        ),
        (
            {
                "reason": REASON,
                "changes": {
                    "add": [
                        {
                            "key": "phase-4",
                            "name": "x",
                            "fee_minor": 1,
                            "depends_on": [{"milestone": "ghost"}],
                        }
                    ]
                },
            },
            "changes.add.0.depends_on",
        ),
    ],
)
async def test_an_invalid_change_order_is_refused_and_changes_nothing(
    example: Example, body: dict[str, Any], field: str
):
    before = counts(example)
    path = f"/v1/engagements/{example.engagement['id']}/change-orders"
    assert_problem(await example.stack.post(path, body), 422, field)
    assert counts(example) == before
    engagement = await example.refresh()
    assert engagement["version"] == 1
    assert [m["status"] for m in engagement["milestones"]] == ["pending"] * 3


@pytest.mark.parametrize("person", ["lead", "client", "stranger"])
async def test_only_the_admin_may_propose_a_change_order(example: Example, person: str):
    before = counts(example)
    assert_problem(await propose(example, RAISE_PHASE_3, token=example.token(person)), 403)
    assert counts(example) == before


async def test_an_integration_token_may_not_propose_a_change_order(example: Example):
    path = f"/v1/engagements/{example.engagement['id']}/integration-tokens"
    token = (await example.stack.post(path, None)).json()["token"]
    before = counts(example)
    assert_problem(await propose(example, RAISE_PHASE_3, token=token), 403)
    assert counts(example) == before


async def test_a_change_order_for_an_unknown_engagement_is_not_found(example: Example):
    body = {"reason": REASON, "changes": RAISE_PHASE_3}
    assert_problem(await example.stack.post("/v1/engagements/eng_nope/change-orders", body), 404)
    assert_problem(await example.stack.get("/v1/engagements/eng_nope/change-orders"), 404)
    assert_problem(await example.stack.get("/v1/change-orders/co_nope"), 404)


async def test_an_engagement_that_is_not_active_takes_no_change_orders(example: Example):
    with example.stack.sessions() as session:
        session.execute(
            update(Engagement)
            .where(Engagement.id == example.engagement["id"])
            .values(status="closing")
        )
        session.commit()
    before = counts(example)
    problem = assert_problem(await propose(example, RAISE_PHASE_3), 409)
    assert problem["type"].endswith("engagement-not-active")
    assert counts(example) == before


async def test_one_change_order_at_a_time_and_the_same_proposal_again_starts_nothing_new(
    example: Example,
):
    first = await propose(example, RAISE_PHASE_3)
    assert first.status_code == 202, first.text
    before = counts(example)

    again = await propose(example, RAISE_PHASE_3)
    other = await propose(example, {"remove": ["phase-3"]})

    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["run_id"]) == (
        first.json()["id"],
        first.json()["run_id"],
    )
    assert assert_problem(other, 409)["type"].endswith("change-order-pending")
    assert counts(example) == before


async def test_a_billed_milestone_cannot_be_changed_or_removed(example: Example):
    run_id = (await example.trigger("phase-1", {"kpis": {"p95_latency_ms": "212"}})).json()[
        "run_id"
    ]
    await sign_off(example, run_id, "billed")
    before = counts(example)

    for changes in (
        {"update": [{"milestone": "phase-1", "fee_minor": 1}]},
        {"remove": ["phase-1"]},
    ):
        problem = assert_problem(await propose(example, changes), 409)
        assert "phase-1 is already billed" in problem["detail"]
        assert problem["type"].endswith("milestone-not-unbilled")
    assert counts(example) == before


@pytest.mark.parametrize(("query", "status"), [("0", 422), ("-1", 422), ("two", 422), ("2", 404)])
async def test_an_engagement_version_that_does_not_exist_is_refused(
    example: Example, query: str, status: int
):
    path = f"/v1/engagements/{example.engagement['id']}?version={query}"
    assert_problem(await example.stack.get(path), status)


async def test_a_stranger_sees_neither_the_change_orders_nor_the_versions(example: Example):
    order = (await propose(example, RAISE_PHASE_3)).json()
    stranger = example.token("stranger")
    engagement = f"/v1/engagements/{example.engagement['id']}"
    assert_problem(await example.stack.get(f"/v1/change-orders/{order['id']}", stranger), 403)
    assert_problem(await example.stack.get(f"{engagement}/change-orders", stranger), 403)
    assert_problem(await example.stack.get(f"{engagement}?version=1", stranger), 403)
    lead = await example.stack.get(f"/v1/change-orders/{order['id']}", example.token("lead"))
    assert lead.status_code == 200, lead.text


class UnreachableTemporal:
    """A Temporal client whose every call fails, and its workflow handles'."""

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    def get_workflow_handle_for(self, *args: Any, **kwargs: Any) -> "UnreachableTemporal":
        return self

    async def query(self, *args: Any, **kwargs: Any) -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


async def test_when_temporal_is_unreachable_the_same_proposal_again_starts_its_sign_off(
    example: Example,
):
    stack = example.stack
    url = stack.sessions.kw["bind"].url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, admin_token=stack.admin_token),
        temporal=UnreachableTemporal(),  # type: ignore[arg-type]
    )
    path = f"/v1/engagements/{example.engagement['id']}/change-orders"
    body = {"reason": REASON, "changes": RAISE_PHASE_3}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        response = await http.post(path, json=body, headers=stack.auth())
        assert "send the same request again" in assert_problem(response, 503)["detail"]
        [order] = (await example.stack.get(path)).json()["items"]
        recorded = await http.get(f"/v1/runs/{order['run_id']}", headers=stack.auth())
    assert recorded.status_code == 200, recorded.text
    assert (recorded.json()["kind"], recorded.json()["stage"]) == ("change_order", "received")
    assert recorded.json()["details"] == {
        "change_order_id": order["id"],
        "status": "proposed",
        "version": None,
    }

    retry = await propose(example, RAISE_PHASE_3)

    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "proposed"
    await sign_off(example, retry.json()["run_id"], "applied")
    assert await fee(example, "phase-3") == 3_200_000
