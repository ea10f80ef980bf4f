"""Fifty clients at once, on both databases: every request is answered 2xx or 4xx, nothing is
lost, and shared evidence never races into an error."""

import asyncio
import uuid

from sqlalchemy import func, select

from api.example import platform_migration
from db.models import Decision, EvidenceLink, Run, Trigger
from tests.conftest_stack import Example, Stack

CLIENTS = 50


async def fifty_milestones(example: Example) -> list[str]:
    """A second engagement with fifty independent, manually approved milestones."""
    body = platform_migration(
        example.customer["id"],
        example.people["lead"]["id"],
        example.people["client"]["id"],
        example.people["lead_backup"]["id"],
        example.people["client_backup"]["id"],
    )
    body["name"] = "Fifty deliverables"
    body["milestones"] = [
        {"key": f"d-{n}", "name": f"Deliverable {n}", "fee_minor": 100_000, "trigger": "manual"}
        for n in range(CLIENTS)
    ]
    response = await example.stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    return [m["id"] for m in response.json()["milestones"]]


async def trigger(stack: Stack, milestone_id: str, evidence_id: str):
    return await stack.post(
        f"/v1/milestones/{milestone_id}/triggers",
        {"source": "load", "evidence_ids": [evidence_id]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


async def test_fifty_triggers_citing_the_same_evidence_are_all_recorded_and_linked_once(
    example: Example,
):
    milestones = await fifty_milestones(example)
    evidence = await example.upload()

    responses = await asyncio.gather(
        *(trigger(example.stack, m, evidence["id"]) for m in milestones)
    )

    assert [r.status_code for r in responses] == [202] * CLIENTS, {r.text for r in responses}
    with example.stack.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Trigger)
                .where(Trigger.milestone_id.in_(milestones))
            )
            == CLIENTS
        )
        links = (
            select(func.count())
            .select_from(EvidenceLink)
            .where(EvidenceLink.evidence_id == evidence["id"])
        )
        assert session.scalar(links) == 1


async def test_fifty_approvers_deciding_at_once_are_each_answered_and_recorded(example: Example):
    milestones = await fifty_milestones(example)
    evidence = await example.upload()
    runs = [
        r.json()["run_id"]
        for r in await asyncio.gather(
            *(trigger(example.stack, m, evidence["id"]) for m in milestones)
        )
    ]
    for run_id in runs:
        await example.wait_for_stage(run_id, "awaiting_approval")

    # Everyone at once, and the same approver twice for one run: the second is refused.
    decisions = [example.decide(run_id, "delivery_lead", "lead") for run_id in runs]
    decisions.append(example.decide(runs[0], "delivery_lead", "lead", "reject", "changed mind"))
    responses = await asyncio.gather(*decisions)

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * CLIENTS + [409], {r.text for r in responses if r.status_code >= 500}
    # Answered once taken into each run; each run records its decision next.
    recorded = select(func.count()).select_from(Decision).where(Decision.run_id.in_(runs))
    for _ in range(200):
        with example.stack.sessions() as session:
            if session.scalar(recorded) == CLIENTS:
                break
        await asyncio.sleep(0.05)
    with example.stack.sessions() as session:
        assert session.scalar(recorded) == CLIENTS
        stages = session.scalars(select(Run.stage).where(Run.id.in_(runs))).all()
    assert set(stages) == {"awaiting_approval"}
