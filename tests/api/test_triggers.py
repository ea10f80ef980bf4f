"""POST /v1/milestones/{id}/triggers over real HTTP: idempotency, open runs, who may trigger,
and every refusal leaves the milestone pending with no run started."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.example import platform_migration
from db.models import EvidenceLink, Run, Trigger
from tests.api.problems import assert_problem
from tests.conftest_stack import Example


def rows(example: Example, model: type, key: str, milestone_id: str | None = None) -> int:
    where = model.milestone_id == (milestone_id or example.milestone(key))
    with example.stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(where)) or 0


async def milestone(example: Example, key: str, engagement_id: str | None = None) -> dict:
    if engagement_id is None:
        engagement = await example.refresh()
    else:
        engagement = (await example.stack.get(f"/v1/engagements/{engagement_id}")).json()
    return next(m for m in engagement["milestones"] if m["key"] == key)


async def assert_nothing_started(example: Example, key: str, engagement_id: str | None = None):
    state = await milestone(example, key, engagement_id)
    assert (state["status"], state["open_run_id"]) == ("pending", None)
    assert rows(example, Run, key, state["id"]) == rows(example, Trigger, key, state["id"]) == 0


async def post(
    example: Example,
    key: str,
    body: Any,
    token: str | None = None,
    idem: str | None = "k-1",
    milestone_id: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": idem} if idem is not None else {}
    path = f"/v1/milestones/{milestone_id or example.milestone(key)}/triggers"
    return await example.stack.post(path, body, token, headers=headers)


async def integration_token(example: Example, engagement_id: str) -> str:
    response = await example.stack.post(f"/v1/engagements/{engagement_id}/integration-tokens", None)
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def another_engagement(example: Example) -> dict[str, Any]:
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    body = platform_migration(example.customer["id"], *people)
    response = await example.stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("idem", [None, "", "k" * 256])
async def test_a_trigger_without_a_usable_idempotency_key_is_refused_and_starts_nothing(
    example: Example, idem: str | None
):
    assert_problem(await post(example, "phase-1", {"source": "t"}, idem=idem), 400)
    await assert_nothing_started(example, "phase-1")


async def test_an_idempotency_key_of_255_characters_is_accepted(example: Example):
    response = await post(example, "phase-1", {"source": "t"}, idem="k" * 255)
    assert response.status_code == 202, response.text


async def test_the_same_key_and_body_return_the_same_run_and_start_only_one(example: Example):
    body = {"source": "ci", "kpis": {"p95_latency_ms": "212"}, "note": "done"}
    first = await post(example, "phase-1", body)
    assert first.status_code == 202, first.text
    again = await post(
        example, "phase-1", {"note": "done", "kpis": {"p95_latency_ms": "212"}, "source": "ci"}
    )
    assert again.status_code == 200, again.text
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.json()["milestone_id"] == example.milestone("phase-1")
    assert rows(example, Run, "phase-1") == rows(example, Trigger, "phase-1") == 1
    state = await milestone(example, "phase-1")
    assert (state["status"], state["open_run_id"]) == ("in_review", first.json()["run_id"])


async def test_the_same_key_with_a_different_body_is_refused_and_changes_nothing(
    example: Example,
):
    first = await post(example, "phase-1", {"source": "ci", "note": "one"})
    assert first.status_code == 202, first.text
    assert_problem(await post(example, "phase-1", {"source": "ci", "note": "two"}), 422)
    assert rows(example, Run, "phase-1") == 1
    with example.stack.sessions() as session:
        trigger = session.scalars(
            select(Trigger).where(Trigger.milestone_id == example.milestone("phase-1"))
        ).one()
        assert trigger.body["note"] == "one"


async def test_a_second_trigger_while_a_run_is_open_is_a_conflict(example: Example):
    first = await post(example, "phase-1", {"source": "ci"}, idem="k-1")
    assert first.status_code == 202, first.text
    assert_problem(await post(example, "phase-1", {"source": "ci"}, idem="k-2"), 409)
    assert rows(example, Run, "phase-1") == 1
    assert (await milestone(example, "phase-1"))["open_run_id"] == first.json()["run_id"]


async def test_a_trigger_for_an_accepted_milestone_is_a_conflict(example: Example):
    run_id = (await post(example, "phase-1", {"source": "ci"})).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    await example.wait_for_stage(run_id, "billed")

    problem = assert_problem(await post(example, "phase-1", {"source": "ci"}, idem="k-2"), 409)
    assert problem["type"].endswith("milestone-accepted")
    state = await milestone(example, "phase-1")
    assert (state["status"], state["open_run_id"]) == ("accepted", None)
    replay = await post(example, "phase-1", {"source": "ci"}, idem="k-1")
    assert (replay.status_code, replay.json()["run_id"]) == (200, run_id)
    assert rows(example, Run, "phase-1") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"completion_percent": "90"}, "completion_percent"),
        ({"completion_percent": "101"}, "completion_percent"),
        ({"completion_percent": 100}, "completion_percent"),
        ({"completion_percent": "-1"}, "completion_percent"),
        ({"kpis": {"p95_latency_ms": 212.5}}, "kpis.p95_latency_ms"),
        ({"kpis": {"p95_latency_ms": True}}, "kpis.p95_latency_ms"),
        ({"kpis": {"p95_latency_ms": "fast"}}, "kpis.p95_latency_ms"),
        ({"kpis": {"p95_latency_ms": "NaN"}}, "kpis.p95_latency_ms"),
        ({"evidence_ids": ["evd_nope"]}, "evidence_ids"),
        ({"priority": "high"}, "priority"),
        ({"note": "x" * 2001}, "note"),
        ({"external_ref": "a\x00b"}, "external_ref"),
    ],
)
async def test_an_invalid_trigger_is_refused_and_starts_nothing(
    example: Example, body: dict, field: str
):
    assert_problem(await post(example, "phase-1", {"source": "t", **body}), 422, field)
    await assert_nothing_started(example, "phase-1")
    assert rows(example, Trigger, "phase-1") == 0


async def test_a_malformed_trigger_body_is_a_400_and_starts_nothing(example: Example):
    response = await example.stack.http.post(
        f"/v1/milestones/{example.milestone('phase-1')}/triggers",
        content=b'{"source": ',
        headers={
            **example.stack.auth(),
            "content-type": "application/json",
            "Idempotency-Key": "k",
        },
    )
    assert_problem(response, 400)
    await assert_nothing_started(example, "phase-1")


async def test_a_refused_trigger_links_no_evidence_and_does_not_use_up_its_key(
    example: Example,
):
    known = (await example.upload())["id"]
    body = {"source": "t", "evidence_ids": [known, "evd_nope"]}
    assert_problem(await post(example, "phase-1", body), 422, "evidence_ids")
    with example.stack.sessions() as session:
        links = select(func.count()).select_from(EvidenceLink)
        where = EvidenceLink.engagement_id == example.engagement["id"]
        assert session.scalar(links.where(where)) == 0
    await assert_nothing_started(example, "phase-1")
    response = await post(example, "phase-1", {"source": "t", "evidence_ids": [known]})
    assert response.status_code == 202, response.text


async def test_an_integration_token_triggers_its_own_engagement_only(example: Example):
    token = await integration_token(example, example.engagement["id"])
    own = await post(example, "phase-1", {"source": "tracker"}, token)
    assert own.status_code == 202, own.text
    assert (await example.stack.get(f"/v1/runs/{own.json()['run_id']}", token)).status_code == 200

    other = await another_engagement(example)
    phase1 = other["milestones"][0]["id"]
    refused = await post(example, "phase-1", {"source": "tracker"}, token, milestone_id=phase1)
    assert_problem(refused, 403)
    await assert_nothing_started(example, "phase-1", other["id"])


@pytest.mark.parametrize("person", ["lead", "client", "stranger"])
async def test_a_principal_token_may_not_trigger(example: Example, person: str):
    assert_problem(await post(example, "phase-1", {"source": "t"}, example.token(person)), 403)
    await assert_nothing_started(example, "phase-1")


async def test_a_trigger_without_a_valid_token_is_unauthenticated(example: Example):
    assert_problem(await post(example, "phase-1", {"source": "t"}, "nope"), 401)
    await assert_nothing_started(example, "phase-1")


async def test_a_trigger_for_an_unknown_milestone_is_not_found(example: Example):
    response = await example.stack.post(
        "/v1/milestones/ms_nope/triggers",
        {"source": "t"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert_problem(response, 404)


async def test_a_dependent_milestone_may_be_triggered_before_its_dependency(example: Example):
    response = await post(example, "phase-2", {"source": "ci", "kpis": {"error_rate_pct": "0.4"}})
    assert response.status_code == 202, response.text
    assert response.json()["stage"] == "received"
    assert response.json()["status_url"].endswith(f"/v1/runs/{response.json()['run_id']}")
    await assert_nothing_started(example, "phase-1")
