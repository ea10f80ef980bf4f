"""POST /v1/runs/{id}/decisions and GET /v1/runs/{id} over real HTTP: who may decide, when,
and every refused decision leaves the run exactly as it was."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Decision, EvidenceLink
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

BOTH = ["client_ap", "delivery_lead"]


@pytest.fixture
async def run_id(example: Example) -> str:
    """Phase 1 triggered and awaiting both sign-offs."""
    response = await example.trigger("phase-1", {"source": "t", "kpis": {"p95_latency_ms": "212"}})
    assert response.status_code == 202, response.text
    run = response.json()["run_id"]
    await example.wait_for_stage(run, "awaiting_approval")
    return run


def decision_rows(example: Example, run: str) -> int:
    with example.stack.sessions() as session:
        query = select(func.count()).select_from(Decision).where(Decision.run_id == run)
        return session.scalar(query) or 0


async def assert_undecided(example: Example, run: str, pending: list[str] = BOTH) -> None:
    status = await example.run(run)
    assert status["stage"] == "awaiting_approval"
    assert sorted(status["pending_roles"]) == pending
    assert [d["role"] for d in status["decisions"]] == [r for r in BOTH if r not in pending]
    if pending == BOTH:
        assert decision_rows(example, run) == 0


async def decide(example: Example, run: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return await example.stack.post(f"/v1/runs/{run}/decisions", body, token)


async def test_an_approval_by_the_role_holder_is_recorded(example: Example, run_id: str):
    response = await example.decide(run_id, "delivery_lead", "lead", comment="Looks right")
    assert response.status_code == 202, response.text
    decision = response.json()["decisions"][0]
    assert (decision["role"], decision["principal_id"], decision["via"]) == (
        "delivery_lead",
        example.people["lead"]["id"],
        "approver",
    )
    assert response.json()["pending_roles"] == ["client_ap"]


@pytest.mark.parametrize(
    ("person", "role"),
    [("client", "delivery_lead"), ("lead", "client_ap"), ("client_backup", "delivery_lead")],
)
async def test_a_principal_without_the_role_may_not_decide_for_it(
    example: Example, run_id: str, person: str, role: str
):
    assert_problem(await example.decide(run_id, role, person), 403)
    await assert_undecided(example, run_id)


async def test_a_stranger_may_neither_decide_nor_read_the_run(example: Example, run_id: str):
    assert_problem(await example.decide(run_id, "client_ap", "stranger"), 403)
    assert_problem(await example.stack.get(f"/v1/runs/{run_id}", example.token("stranger")), 403)
    await assert_undecided(example, run_id)


@pytest.mark.parametrize(
    ("person", "role"), [("lead_backup", "delivery_lead"), ("client_backup", "client_ap")]
)
async def test_an_escalation_contact_may_not_decide_before_escalation(
    example: Example, run_id: str, person: str, role: str
):
    assert (await example.stack.get(f"/v1/runs/{run_id}", example.token(person))).status_code == 200
    problem = assert_problem(await example.decide(run_id, role, person), 403)
    assert "not escalated" in problem["detail"]
    await assert_undecided(example, run_id)


async def test_a_second_decision_for_the_same_role_is_a_conflict(example: Example, run_id: str):
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    again = await example.decide(run_id, "delivery_lead", "lead", "reject", "changed my mind")
    assert_problem(again, 409)
    await assert_undecided(example, run_id, pending=["client_ap"])
    status = await example.run(run_id)
    assert [d["decision"] for d in status["decisions"]] == ["approve"]


async def test_a_decision_on_a_rejected_run_is_a_conflict(example: Example, run_id: str):
    rejected = await example.decide(run_id, "client_ap", "client", "reject", "Plan incomplete")
    assert rejected.status_code == 202, rejected.text
    await example.wait_for_stage(run_id, "rejected")
    assert_problem(await example.decide(run_id, "delivery_lead", "lead"), 409)
    status = await example.run(run_id)
    assert status["stage"] == "rejected"
    assert [(d["role"], d["decision"]) for d in status["decisions"]] == [("client_ap", "reject")]
    for _ in range(100):  # the run closes in the workflow first, then in the database
        phase1 = (await example.refresh())["milestones"][0]
        if phase1["status"] != "in_review":
            break
        await asyncio.sleep(0.05)
    assert (phase1["status"], phase1["open_run_id"], phase1["billed_minor"]) == (
        "rejected",
        None,
        0,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "client_ap", "decision": "reject"}, "body"),
        ({"role": "client_ap", "decision": "reject", "comment": "   "}, "body"),
        ({"role": "client_ap", "decision": "maybe"}, "decision"),
        ({"role": "client_ap"}, "decision"),
        ({"decision": "approve"}, "role"),
        ({"role": "client_ap", "decision": "approve", "extra": 1}, "extra"),
        ({"role": "client_ap", "decision": "approve", "comment": "ok\x00"}, "comment"),
        ({"role": "finance", "decision": "approve"}, "role"),
        ({"role": "client_ap", "decision": "approve", "evidence_ids": ["evd_x"]}, "evidence_ids"),
    ],
)
async def test_an_invalid_decision_is_refused_and_changes_nothing(
    example: Example, run_id: str, body: dict, field: str
):
    assert_problem(await decide(example, run_id, example.token("client"), body), 422, field)
    await assert_undecided(example, run_id)


async def test_a_rejection_without_a_comment_says_a_comment_is_needed(
    example: Example, run_id: str
):
    problem = assert_problem(await example.decide(run_id, "client_ap", "client", "reject"), 422)
    assert "comment" in problem["detail"]
    await assert_undecided(example, run_id)


async def test_a_decision_with_unknown_evidence_links_none_of_it(example: Example, run_id: str):
    known = (await example.upload())["id"]
    body = {"role": "client_ap", "decision": "approve", "evidence_ids": [known, "evd_x"]}
    assert_problem(await decide(example, run_id, example.token("client"), body), 422)
    with example.stack.sessions() as session:
        query = select(func.count()).select_from(EvidenceLink)
        assert session.scalar(query.where(EvidenceLink.evidence_id == known)) == 0
    await assert_undecided(example, run_id)


async def test_the_admin_and_integration_tokens_may_not_decide(example: Example, run_id: str):
    response = await example.stack.post(
        f"/v1/engagements/{example.engagement['id']}/integration-tokens", None
    )
    body = {"role": "client_ap", "decision": "approve"}
    for token in (example.stack.admin_token, response.json()["token"]):
        assert_problem(await decide(example, run_id, token, body), 403)
    await assert_undecided(example, run_id)


async def test_a_decision_without_a_valid_token_is_unauthenticated(example: Example, run_id: str):
    body = {"role": "client_ap", "decision": "approve"}
    assert_problem(await decide(example, run_id, "tgp_nope", body), 401)
    await assert_undecided(example, run_id)


async def test_a_decision_on_an_unknown_run_is_not_found(example: Example):
    body = {"role": "client_ap", "decision": "approve"}
    assert_problem(await decide(example, "run-nope", example.token("client"), body), 404)
    assert_problem(await example.stack.get("/v1/runs/run-nope"), 404)


async def test_the_run_shows_its_deadlines_criteria_and_amounts(example: Example, run_id: str):
    status = await example.run(run_id)
    assert status["run_id"] == run_id
    assert status["milestone_id"] == example.milestone("phase-1")
    assert set(status["deadlines"]) >= {
        "reminder_at",
        "escalate_at",
        "deemed_warning_at",
        "deemed_acceptance_at",
        "expire_at",
    }
    assert status["deadlines"]["deemed_warning_at"] < status["deadlines"]["deemed_acceptance_at"]
    assert {c["id"]: c["passed"] for c in status["criteria"]} == {"plan": None, "p95": True}
    assert (status["invoice_id"], status["outcome"]) == (None, None)
    lead = await example.stack.get(f"/v1/runs/{run_id}", example.token("lead"))
    assert lead.status_code == 200
    assert lead.json()["run_id"] == run_id
