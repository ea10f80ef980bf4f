"""POST/GET /v1/engagements/{id}/closeout over real HTTP: the final sign-off through the usual
decisions endpoint, the retention released on the next invoice, a closed engagement refusing
triggers, and every refused close-out leaving the engagement exactly as it was."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from config import Settings
from db.models import AuditEvent, Engagement, Milestone, Run
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

KPIS = {"phase-1": {"p95_latency_ms": "212"}, "phase-2": {"error_rate_pct": "0.4"}}
WAIVE_ALL = {
    "waive": [
        {"milestone": key, "reason": "Descoped by mutual agreement"}
        for key in ("phase-1", "phase-2", "phase-3")
    ]
}


async def accept(example: Example, *keys: str) -> None:
    for key in keys:
        response = await example.trigger(key, {"source": "t", "kpis": KPIS.get(key, {})})
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        await example.wait_for_stage(run_id, "awaiting_approval")
        for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
            assert (await example.decide(run_id, role, person)).status_code == 202
        await example.wait_for_stage(run_id, "billed")


async def close_out(example: Example, body: Any, token: str | None = None) -> httpx.Response:
    return await example.stack.post(
        f"/v1/engagements/{example.engagement['id']}/closeout", body, token
    )


def state(example: Example) -> dict[str, Any]:
    """What a refused close-out must leave untouched."""
    engagement_id = example.engagement["id"]
    with example.stack.sessions() as session:
        count = select(func.count()).select_from
        return {
            "status": session.get_one(Engagement, engagement_id).status,
            "closeouts": session.scalar(
                count(Run).where(Run.engagement_id == engagement_id, Run.kind == "closeout")
            ),
            "audit_events": session.scalar(
                count(AuditEvent).where(AuditEvent.engagement_id == engagement_id)
            ),
            "milestones": sorted(
                session.execute(
                    select(Milestone.key, Milestone.status).where(
                        Milestone.engagement_id == engagement_id
                    )
                ).all()
            ),
        }


async def test_a_signed_off_closeout_releases_the_retention_and_closes_the_engagement(
    example: Example,
):
    await accept(example, "phase-1", "phase-2")
    waive = {"waive": [{"milestone": "phase-3", "reason": "Client runs the cutover itself"}]}

    response = await close_out(example, {**waive, "note": "Project complete"})

    assert response.status_code == 202, response.text
    started = response.json()
    run_id = started["run_id"]
    assert started["engagement_id"] == example.engagement["id"]
    assert run_id == f"closeout:{example.engagement['id']}:1"
    assert started["status_url"].endswith(f"/v1/runs/{run_id}")
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert (status["kind"], status["milestone_id"]) == ("closeout", None)
    assert sorted(status["pending_roles"]) == ["client_ap", "delivery_lead"]
    assert status["details"]["retention_balance_minor"] == 700_000
    assert (await example.refresh())["status"] == "closing"

    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        decided = await example.decide(run_id, role, person, comment="All delivered")
        assert decided.status_code == 202, decided.text
    status = await example.wait_for_stage(run_id, "released")

    assert status["details"]["released_minor"] == 700_000
    engagement = await example.refresh()
    assert (engagement["status"], engagement["retention_balance_minor"]) == ("closed", 0)
    assert [m["status"] for m in engagement["milestones"]] == ["accepted", "accepted", "waived"]
    invoice = (await example.stack.get(f"/v1/invoices/{status['invoice_id']}")).json()
    release = [line for line in invoice["lines"] if line["kind"] == "retention_release"]
    assert [(line["amount_minor"], line["run_id"]) for line in release] == [(700_000, run_id)]
    assert invoice["total_minor"] == sum(line["amount_minor"] for line in invoice["lines"])
    shown = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/closeout")
    assert (shown.json()["run_id"], shown.json()["stage"]) == (run_id, "released")
    verify = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    assert verify.json()["ok"] is True

    refused = assert_problem(await example.trigger("phase-3"), 409)
    assert refused["type"].endswith("engagement-closed")
    assert_problem(await close_out(example, {}), 409)


async def test_a_rejected_closeout_hands_the_engagement_back_and_a_second_one_waits_for_it(
    example: Example,
):
    response = await close_out(example, WAIVE_ALL)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    before = state(example)

    assert_problem(await close_out(example, WAIVE_ALL), 409)
    assert state(example) == before
    assert_problem(await example.trigger("phase-1"), 409)

    rejected = await example.decide(run_id, "client_ap", "client", "reject", "Not done yet")
    assert rejected.status_code == 202, rejected.text
    status = await example.wait_for_stage(run_id, "rejected")
    assert "Not done yet" in status["outcome_detail"]
    engagement = await example.refresh()
    assert engagement["status"] == "active"
    assert {m["status"] for m in engagement["milestones"]} == {"pending"}
    again = await close_out(example, WAIVE_ALL)
    assert again.status_code == 202, again.text
    assert again.json()["run_id"] == f"closeout:{example.engagement['id']}:2"
    await example.wait_for_stage(again.json()["run_id"], "awaiting_approval")
    await example.decide(again.json()["run_id"], "client_ap", "client", "reject", "Still not")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 409, "waive"),
        ({"waive": [{"milestone": "phase-2", "reason": "x"}]}, 409, "waive"),
        ({"waive": [{"milestone": "phase-9", "reason": "x"}]}, 422, "waive.0.milestone"),
        ({"waive": [{"milestone": "phase-1"}]}, 422, "waive.0.reason"),
        ({"waive": [{"milestone": "phase-1", "reason": "   "}]}, 422, "waive.0.reason"),
        ({"waive": [{"milestone": "phase-1", "reason": "x"}] * 2}, 422, "waive"),
        ({**WAIVE_ALL, "force": True}, 422, "force"),
        ({"waive": "phase-1"}, 422, "waive"),
    ],
)
async def test_a_closeout_with_unaccepted_or_badly_waived_milestones_is_refused(
    example: Example, body: dict[str, Any], status: int, field: str
):
    before = state(example)
    problem = assert_problem(await close_out(example, body), status, field)
    if status == 409:
        assert "phase-3" in problem["detail"]
    assert state(example) == before


async def test_waiving_an_accepted_milestone_is_refused(example: Example):
    await accept(example, "phase-1")
    before = state(example)
    body = {"waive": [{"milestone": k, "reason": "x"} for k in ("phase-1", "phase-2", "phase-3")]}

    assert_problem(await close_out(example, body), 422, "waive.0.milestone")
    assert state(example) == before


async def test_a_closeout_while_a_milestone_run_is_open_is_a_conflict(example: Example):
    response = await example.trigger("phase-1", {"source": "t", "kpis": KPIS["phase-1"]})
    assert response.status_code == 202, response.text
    # Let the run record its own stage (and audit events) first: only the close-out's count.
    run_id = response.json()["run_id"]
    for _ in range(300):
        with example.stack.sessions() as session:
            if session.get_one(Run, run_id).stage == "awaiting_approval":
                break
        await asyncio.sleep(0.05)
    before = state(example)

    problem = assert_problem(await close_out(example, WAIVE_ALL), 409)
    assert response.json()["run_id"] in problem["detail"]
    assert state(example) == before


@pytest.mark.parametrize("person", ["lead", "client", "stranger"])
async def test_only_the_admin_may_close_out(example: Example, person: str):
    before = state(example)
    assert_problem(await close_out(example, WAIVE_ALL, example.token(person)), 403)
    assert state(example) == before


async def test_an_unknown_engagement_has_no_closeout(example: Example):
    assert_problem(await example.stack.post("/v1/engagements/eng_nope/closeout", WAIVE_ALL), 404)
    assert_problem(await example.stack.get("/v1/engagements/eng_nope/closeout"), 404)
    path = f"/v1/engagements/{example.engagement['id']}/closeout"
    assert_problem(await example.stack.get(path), 404)
    assert_problem(await example.stack.get(path, example.token("stranger")), 403)


class UnreachableTemporal:
    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


async def test_when_temporal_is_unreachable_the_closeout_is_withdrawn_and_a_retry_works(
    example: Example,
):
    stack = example.stack
    url = stack.sessions.kw["bind"].url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, admin_token=stack.admin_token),
        temporal=UnreachableTemporal(),  # type: ignore[arg-type]
    )
    path = f"/v1/engagements/{example.engagement['id']}/closeout"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        response = await http.post(path, json=WAIVE_ALL, headers=stack.auth())
    assert_problem(response, 503)
    assert (await example.refresh())["status"] == "active"

    retry = await close_out(example, WAIVE_ALL)

    assert retry.status_code == 202, retry.text
    run_id = retry.json()["run_id"]
    assert run_id.endswith(":2")  # the withdrawn attempt keeps its id
    await example.wait_for_stage(run_id, "awaiting_approval")
    await example.decide(run_id, "client_ap", "client", "reject", "Not yet")
