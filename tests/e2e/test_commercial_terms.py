"""The issue's commercial-terms example end to end over real HTTP, on the time-skipping server so
that "30 days later" and "a 180-day warranty" take seconds.

The 100,000.00 USD 30/40/30 engagement gains a 5,000.00 launch bonus (error rate at most 0.5%,
clawed back in full if a report within 90 days shows otherwise) and a 180-day warranty on its 10%
retention. Phase 2 is accepted at 90% then 100%, a change order raises phase 3 to 32,000.00 before
it is triggered, the bonus is clawed back by a report 30 days after launch, and the close-out
releases the escrow after the warranty.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from api.example import platform_migration
from tests.conftest_stack import Example, Stack, serve_stack

ERROR_RATE_OK = {"error_rate_pct": "0.3"}
ERROR_RATE_AT_MOST_HALF = {"metric": "error_rate_pct", "op": "<=", "threshold": "0.5"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def skipping_stack(
    request: pytest.FixtureRequest,
    time_skipping: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Stack, WorkflowEnvironment]]:
    backend: str = request.param
    async with serve_stack(backend, time_skipping, tmp_path_factory.mktemp(backend)) as stack:
        yield stack, time_skipping


async def create_example(stack: Stack, launch_deadline: str) -> Example:
    people = {
        name: await stack.principal(name)
        for name in ("lead", "client", "lead_backup", "client_backup")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"})).json()
    body = platform_migration(customer["id"], *(p["id"] for p in people.values()))
    body["retention"]["release_delay"] = {"duration": "P180D"}
    body["payment_terms"] = {"business_days": 10}
    body["milestones"].append(
        {
            "key": "launch-bonus",
            "name": "Launch bonus: error rate at most 0.5%",
            "kind": "bonus",
            "fee_minor": 500_000,
            "trigger": "automatic",
            "depends_on": [{"milestone": "phase-3"}],
            "acceptance_criteria": [
                {"id": "errors", "description": "Error rate at launch", **ERROR_RATE_AT_MOST_HALF}
            ],
            "deadline": launch_deadline,
            "clawback": {
                "window": {"duration": "P90D"},
                "kpi": ERROR_RATE_AT_MOST_HALF,
                "percent": "100",
            },
        }
    )
    response = await stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


async def sign_off(example: Example, run_id: str) -> None:
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        response = await example.decide(run_id, role, person, comment="Accepted")
        assert response.status_code == 202, response.text


async def bill(example: Example, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await example.trigger(key, {"source": "delivery-tracker", **body})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await sign_off(example, run_id)
    return await example.wait_for_stage(run_id, "billed")


async def get(stack: Stack, path: str) -> Any:
    response = await stack.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_commercial_terms_example_bills_claws_back_and_releases_the_escrow(
    skipping_stack: tuple[Stack, WorkflowEnvironment],
):
    stack, env = skipping_stack
    launch = (await env.get_current_time()) + timedelta(days=60)
    example = await create_example(stack, launch.isoformat().replace("+00:00", "Z"))
    engagement_id = example.engagement["id"]

    await bill(example, "phase-1", {"kpis": {"p95_latency_ms": "212"}})

    # Phase 2 at 90% then 100%: two bills totalling exactly 40,000.00 gross.
    first = await bill(example, "phase-2", {"completion_percent": "90", "kpis": ERROR_RATE_OK})
    second = await bill(example, "phase-2", {"completion_percent": "100", "kpis": ERROR_RATE_OK})
    assert first["amounts"]["gross_minor"] + second["amounts"]["gross_minor"] == 4_000_000

    # A change order raises phase 3 to 32,000.00 before it is triggered.
    proposed = await stack.post(
        f"/v1/engagements/{engagement_id}/change-orders",
        {
            "reason": "Extra cutover rehearsal requested by the client",
            "changes": {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]},
        },
    )
    assert proposed.status_code == 202, proposed.text
    change_order = proposed.json()
    await sign_off(example, change_order["run_id"])
    await example.wait_for_stage(change_order["run_id"], "applied")
    engagement = await example.refresh()
    assert engagement["version"] == 2
    phase3 = next(m for m in engagement["milestones"] if m["key"] == "phase-3")
    assert phase3["fee_minor"] == 3_200_000
    original = await get(stack, f"/v1/engagements/{engagement_id}?version=1")
    assert next(m for m in original["milestones"] if m["key"] == "phase-3")["fee_minor"] == (
        3_000_000
    )

    # Phase 3 (launch) and the automatic bonus on the launch error rate.
    third = await bill(example, "phase-3", {})
    assert third["amounts"]["gross_minor"] == 3_200_000
    bonus = await example.trigger("launch-bonus", {"source": "monitoring", "kpis": ERROR_RATE_OK})
    assert bonus.status_code == 202, bonus.text
    bonus_run = await example.wait_for_stage(bonus.json()["run_id"], "billed")
    assert bonus_run["amounts"]["gross_minor"] == 500_000

    # Everything billed so far is invoiced: finalize the draft.
    invoice_id = bonus_run["invoice_id"]
    finalized = await stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert finalized.status_code == 200, finalized.text
    assert finalized.json()["number"].startswith("TG-")

    # 30 days after launch a KPI report shows 0.9%: the bonus is clawed back in full.
    await env.sleep(timedelta(days=30))
    bonus_id = example.milestone("launch-bonus")
    report = await stack.post(
        f"/v1/milestones/{bonus_id}/kpi-reports",
        {"source": "monitoring", "kpis": {"error_rate_pct": "0.9"}},
        headers={"Idempotency-Key": f"report-{uuid.uuid4()}"},
    )
    assert report.status_code == 202, report.text
    watch = await wait_for_watch(stack, bonus_id, "clawed_back")
    assert watch["clawback_minor"] == 500_000
    notes = (await get(stack, f"/v1/customers/{example.customer['id']}/credit-notes"))["items"]
    assert [(n["invoice_id"], n["total_minor"]) for n in notes] == [(invoice_id, -500_000)]

    # Close-out: both sign off, the 10% retention waits out a 180-day warranty, then is released.
    closeout = await stack.post(f"/v1/engagements/{engagement_id}/closeout", {})
    assert closeout.status_code == 202, closeout.text
    closeout_run = closeout.json()["run_id"]
    await sign_off(example, closeout_run)
    warranty = await example.wait_for_stage(closeout_run, "warranty")
    assert warranty["deadlines"]["release_at"] is not None
    assert (await example.refresh())["retention_balance_minor"] == 1_070_000
    refused = await example.trigger("phase-1", {"source": "late"})
    assert refused.status_code == 409, refused.text

    await env.sleep(timedelta(days=181))
    await example.wait_for_stage(closeout_run, "released")
    engagement = await example.refresh()
    assert (engagement["status"], engagement["retention_balance_minor"]) == ("closed", 0)

    # Every invoice and credit-note line adds up to the fees billed minus the clawback.
    fees_billed = 3_000_000 + 4_000_000 + 3_200_000 + 500_000
    invoices = await get(stack, f"/v1/customers/{example.customer['id']}/invoices")
    invoice_lines = []
    for summary in invoices["items"]:
        invoice = await get(stack, f"/v1/invoices/{summary['id']}")
        assert invoice["total_minor"] == sum(line["amount_minor"] for line in invoice["lines"])
        invoice_lines += invoice["lines"]
    release = [line for line in invoice_lines if line["kind"] == "retention_release"]
    assert [line["amount_minor"] for line in release] == [1_070_000]
    credit_lines = [
        line
        for note in notes
        for line in (await get(stack, f"/v1/credit-notes/{note['id']}"))["lines"]
    ]
    total = sum(line["amount_minor"] for line in [*invoice_lines, *credit_lines])
    assert total == fees_billed - 500_000

    verify = await get(stack, f"/v1/engagements/{engagement_id}/audit/verify")
    assert verify["ok"] is True
    trail = await get(stack, f"/v1/engagements/{engagement_id}/audit?limit=200")
    kinds = {event["kind"] for event in trail["items"]}
    assert {"change_order_applied", "clawback_issued", "retention_released"} <= kinds


async def wait_for_watch(stack: Stack, milestone_id: str, stage: str) -> dict[str, Any]:
    for _ in range(300):
        response = await stack.get(f"/v1/milestones/{milestone_id}/clawback")
        if response.status_code == 200 and response.json()["stage"] == stage:
            return response.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"clawback watch never reached {stage}: {response.text}")
