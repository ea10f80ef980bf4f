"""Regulatory confirmations over real HTTP on both databases: a filing gateway's signed payloads
bill one line per accepted filing (each distinct confirmation id), a confirmation is used once
per engagement, and a trigger without a matching confirmation is refused at the door."""

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.models import Notification, Run, new_id
from tests.api.problems import assert_problem
from tests.api.test_sources import deliver, log, register
from tests.conftest_stack import Example

FCA = r"FCA-\d{4}-\d{6}"
ACCEPTED = {"id": "accepted", "metric": "regulator_accepted", "op": "==", "threshold": "1"}


async def filings(example: Example, after_registration: bool = False) -> Example:
    """The example's people and customer under a filings engagement: a per-filing milestone
    (2,500.00 a filing, FCA confirmations; billed only after the registration if
    ``after_registration``) and a one-off registration needing a confirmation."""
    body = {
        "customer_id": example.customer["id"],
        "name": "Regulatory filings",
        "currency": "USD",
        "retention": {"percent": "10"},
        "approval": {
            "roles": {
                "delivery_lead": [example.people["lead"]["id"]],
                "client_ap": [example.people["client"]["id"]],
            }
        },
        "milestones": [
            {
                "key": "filing",
                "name": "Quarterly regulatory filing",
                "repeatable": True,
                "unit_fee_minor": 250_000,
                "confirmation": {"required": True, "pattern": FCA},
                "trigger": "automatic",
                "acceptance_criteria": [ACCEPTED],
                "depends_on": [{"milestone": "registration"}] if after_registration else [],
            },
            {
                "key": "registration",
                "name": "Firm registration",
                "fee_minor": 1_000_000,
                "confirmation": {"required": True},
            },
        ],
    }
    response = await example.stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    engagement = response.json()
    assert [(m["repeatable"], m["confirmation"]) for m in engagement["milestones"]] == [
        (True, {"required": True, "pattern": FCA}),
        (False, {"required": True, "pattern": None}),
    ]
    return Example(example.stack, example.people, example.customer, engagement)


async def gateway(example: Example) -> dict[str, Any]:
    """A filing gateway's source: its payload names the confirmation and the outcome."""
    return await register(
        example,
        {
            "kind": "mapping",
            "name": "Filing gateway",
            "mapping": {
                "milestone": "'filing'",
                "when": "event == 'filing.accepted'",
                "confirmation_id": "filing.regulator_confirmation",
                "kpis": {"regulator_accepted": "filing.accepted"},
                "note": "filing.reference",
            },
        },
    )


def accepted_filing(confirmation: str | None, reference: str = "Q3 return") -> bytes:
    filing: dict[str, Any] = {"reference": reference, "accepted": 1}
    if confirmation is not None:
        filing["regulator_confirmation"] = confirmation
    return json.dumps({"event": "filing.accepted", "filing": filing}).encode()


def runs_of(example: Example, key: str) -> int:
    with example.stack.sessions() as session:
        where = Run.milestone_id == example.milestone(key)
        return session.scalar(select(func.count()).select_from(Run).where(where)) or 0


async def billed_lines(example: Example, invoice_id: str) -> list[dict[str, Any]]:
    invoice = (await example.stack.get(f"/v1/invoices/{invoice_id}")).json()
    return [line for line in invoice["lines"] if line["kind"] == "milestone"]


async def trigger(example: Example, key: str, confirmation: str | None, **body: Any):
    return await example.trigger(
        key, {"source": "filing-desk", "confirmation_id": confirmation, **body}
    )


async def test_each_distinct_confirmation_bills_one_filing_and_a_used_one_is_409(
    example: Example,
):
    example = await filings(example)
    source = await gateway(example)
    first = await deliver(example, source, accepted_filing("FCA-2026-000123"), webhook_id="msg_q3")
    assert first.status_code == 202, first.text
    q3 = await example.wait_for_stage(first.json()["run_id"], "billed")
    assert q3["confirmation_id"] == "FCA-2026-000123"
    assert q3["amounts"] == {
        "gross_minor": 250_000,
        "retention_minor": 25_000,
        "net_minor": 225_000,
    }

    # The gateway retries the same delivery: the same answer. Another delivery (new webhook-id)
    # of the same confirmation: refused, nothing new.
    again = await deliver(example, source, accepted_filing("FCA-2026-000123"), webhook_id="msg_q3")
    assert (again.status_code, again.json()) == (202, first.json())
    duplicate = await deliver(
        example, source, accepted_filing("FCA-2026-000123", "Q3 resend"), webhook_id="msg_dup"
    )
    problem = assert_problem(duplicate, 409)
    assert problem["type"].endswith("confirmation-used")
    assert "FCA-2026-000123" in problem["detail"] and q3["run_id"] in problem["detail"]
    assert runs_of(example, "filing") == 1

    # The milestone is accepted by its first filing yet takes the next one, billed on its own.
    second = await deliver(
        example, source, accepted_filing("FCA-2026-000456", "Q4 return"), webhook_id="msg_q4"
    )
    assert second.status_code == 202, second.text
    q4 = await example.wait_for_stage(second.json()["run_id"], "billed")
    assert q4["invoice_id"] == q3["invoice_id"]
    lines = await billed_lines(example, q3["invoice_id"])
    assert [(line["amount_minor"], line["details"]) for line in lines] == [
        (250_000, {"confirmation_id": "FCA-2026-000123", "unit_fee_minor": 250_000}),
        (250_000, {"confirmation_id": "FCA-2026-000456", "unit_fee_minor": 250_000}),
    ]
    assert [line["description"] for line in lines] == [
        "Quarterly regulatory filing (filing, filing, confirmation FCA-2026-000123)",
        "Quarterly regulatory filing (filing, filing, confirmation FCA-2026-000456)",
    ]
    engagement = await example.refresh()
    filing = engagement["milestones"][0]
    assert (filing["status"], filing["billed_minor"], filing["open_run_id"]) == (
        "accepted",
        500_000,
        None,
    )
    assert filing["retention_held_minor"] == engagement["retention_balance_minor"] == 50_000

    audit = (await example.stack.get(f"/v1/engagements/{engagement['id']}/audit?limit=200")).json()[
        "items"
    ]
    accepted = [e["data"] for e in audit if e["kind"] == "milestone_accepted"]
    assert [(a["confirmation_id"], a["gross_minor"]) for a in accepted] == [
        ("FCA-2026-000123", 250_000),
        ("FCA-2026-000456", 250_000),
    ]
    received = [e["data"] for e in audit if e["kind"] == "trigger_received"]
    assert [r["confirmation_id"] for r in received] == ["FCA-2026-000123", "FCA-2026-000456"]
    logged = await log(example, source)
    assert [(d["webhook_id"], d["status_code"]) for d in logged] == [
        ("msg_q3", 202),
        ("msg_dup", 409),
        ("msg_q4", 202),
    ]
    assert runs_of(example, "filing") == 2
    with example.stack.sessions() as session:  # the approvers hear which filing was billed
        subjects = session.scalars(
            select(Notification.subject).where(
                Notification.run_id == q3["run_id"], Notification.kind == "run_billed"
            )
        ).all()
    assert subjects and all("(confirmation FCA-2026-000123): billed" in s for s in subjects)


@pytest.mark.parametrize(
    ("confirmation", "message"),
    [
        ("SEC-2026-1", "does not match the milestone's pattern"),
        ("FCA-2026-000123-A", "does not match the milestone's pattern"),
        (None, "only with its regulator's confirmation_id"),
    ],
)
async def test_a_filing_without_a_matching_confirmation_is_422_and_triggers_nothing(
    example: Example, confirmation: str | None, message: str
):
    example = await filings(example)
    source = await gateway(example)
    delivered = await deliver(example, source, accepted_filing(confirmation))
    assert message in assert_problem(delivered, 422, "confirmation_id")["detail"]
    posted = await trigger(example, "filing", confirmation, kpis={"regulator_accepted": "1"})
    assert message in assert_problem(posted, 422, "confirmation_id")["detail"]
    assert runs_of(example, "filing") == 0
    refused = [d["outcome"] for d in await log(example, source)]
    assert refused == ["refused"]


async def test_a_confirmation_is_used_once_per_engagement_kept_when_judged_freed_when_cancelled(
    example: Example,
):
    example = await filings(example)
    billed = await trigger(example, "filing", "FCA-2026-000001", kpis={"regulator_accepted": "1"})
    assert billed.status_code == 202, billed.text
    await example.wait_for_stage(billed.json()["run_id"], "billed")
    other_milestone = await trigger(example, "registration", "FCA-2026-000001")
    assert assert_problem(other_milestone, 409)["type"].endswith("confirmation-used")

    # Cancelled is no verdict on the filing: the same confirmation may be sent again.
    first = await trigger(example, "registration", "REG-77")
    run_id = first.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    cancelled = await example.stack.post(f"/v1/runs/{run_id}/cancel", {"reason": "Wrong firm"})
    assert cancelled.status_code == 200, cancelled.text
    assert (await example.run(run_id))["confirmation_id"] == "REG-77"  # still shown
    retried = await trigger(example, "registration", "REG-77")
    assert retried.status_code == 202, retried.text

    # Rejected by the client is a verdict: the confirmation stays used.
    run_id = retried.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    rejected = await example.decide(run_id, "client_ap", "client", "reject", "Not our filing")
    assert rejected.status_code == 202, rejected.text
    await example.wait_for_stage(run_id, "rejected")
    reused = await trigger(example, "registration", "REG-77")
    assert assert_problem(reused, 409)["type"].endswith("confirmation-used")
    assert runs_of(example, "registration") == 2

    audit = (
        await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    ).json()["items"]
    registration = example.milestone("registration")
    closed = [
        e["data"] for e in audit if e["kind"] == "run_closed" and e["milestone_id"] == registration
    ]
    assert [c.get("released", {}).get("confirmation_id") for c in closed] == ["REG-77", None]


async def test_the_database_refuses_a_second_run_holding_the_same_confirmation(example: Example):
    example = await filings(example)
    response = await trigger(example, "filing", "FCA-2026-000009", kpis={"regulator_accepted": "1"})
    assert response.status_code == 202, response.text
    with example.stack.sessions() as session:
        held = session.get_one(Run, response.json()["run_id"])
        twin = Run(
            id=f"milestone:{held.engagement_id}:filing:{new_id('x')}",
            milestone_id=held.milestone_id,
            engagement_id=held.engagement_id,
            snapshot={},
            confirmation_id="FCA-2026-000009",
            confirmation_held="FCA-2026-000009",
        )
        session.add(twin)
        with pytest.raises(IntegrityError):
            session.commit()


async def test_two_concurrent_filings_with_one_confirmation_bill_once(example: Example):
    example = await filings(example)
    kpis = {"regulator_accepted": "1"}
    answers = await asyncio.gather(
        *(trigger(example, "filing", "FCA-2026-000777", kpis=kpis) for _ in range(4))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409], [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert assert_problem(refused, 409)["type"].endswith("confirmation-used")
    [won] = [a for a in answers if a.status_code == 202]
    billed = await example.wait_for_stage(won.json()["run_id"], "billed")
    assert len(await billed_lines(example, billed["invoice_id"])) == 1
    assert runs_of(example, "filing") == 1


async def test_filings_wait_side_by_side_for_their_dependency_and_bill_when_it_is_accepted(
    example: Example,
):
    example = await filings(example, after_registration=True)
    kpis = {"regulator_accepted": "1"}
    waiting = []
    for confirmation in ("FCA-2026-000010", "FCA-2026-000011"):
        response = await trigger(example, "filing", confirmation, kpis=kpis)
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        status = await example.wait_for_stage(run_id, "waiting_on_dependency")
        assert status["waiting_on"] == ["registration"]
        waiting.append(run_id)

    registration = await trigger(example, "registration", "REG-1")
    run_id = registration.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        assert (await example.decide(run_id, role, person)).status_code == 202
    await example.wait_for_stage(run_id, "billed")

    billed = [await example.wait_for_stage(r, "billed") for r in waiting]
    lines = await billed_lines(example, billed[0]["invoice_id"])
    assert sorted((line["details"] or {}).get("confirmation_id", "") for line in lines) == [
        "FCA-2026-000010",
        "FCA-2026-000011",
        "REG-1",
    ]
    assert [line["amount_minor"] for line in lines].count(250_000) == 2


async def test_a_filing_in_progress_holds_off_close_out_and_change_orders_removing_it(
    example: Example,
):
    example = await filings(example, after_registration=True)
    response = await trigger(example, "filing", "FCA-2026-000020", kpis={"regulator_accepted": "1"})
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "waiting_on_dependency")
    engagement = example.engagement["id"]

    waive = [
        {"milestone": "registration", "reason": "Registered elsewhere"},
        {"milestone": "filing", "reason": "No more filings"},
    ]
    closeout = await example.stack.post(f"/v1/engagements/{engagement}/closeout", {"waive": waive})
    problem = assert_problem(closeout, 409)
    assert problem["type"].endswith("open-run") and run_id in problem["detail"]

    removal = await example.stack.post(
        f"/v1/engagements/{engagement}/change-orders",
        {"reason": "Drop filings", "changes": {"remove": ["filing"]}},
    )
    assert run_id in assert_problem(removal, 409)["detail"]
    assert (await example.run(run_id))["stage"] == "waiting_on_dependency"
