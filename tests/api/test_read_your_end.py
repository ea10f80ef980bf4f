"""What a caller reads is what the books say: once a run reads as ended, its end is committed, so
a client acting on it at once is never told the milestone is still claimed."""

from typing import Any

from tests.conftest_stack import Example


async def read_until(example: Example, run_id: str, stage: str) -> dict[str, Any]:
    """Poll as fast as an impatient client would (bounded, no sleeping)."""
    for _ in range(2000):
        status = await example.run(run_id)
        if status["stage"] == stage:
            return status
    raise AssertionError(f"run {run_id} never read {stage}; it is {status['stage']}")


async def test_a_client_that_retriggers_the_moment_it_reads_rejected_is_accepted(
    example: Example,
):
    for attempt in range(3):
        response = await example.trigger("phase-1")
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        await example.wait_for_stage(run_id, "awaiting_approval")
        rejected = await example.decide(
            run_id, "client_ap", "client", "reject", f"rework {attempt}"
        )
        assert rejected.status_code == 202, rejected.text
        await read_until(example, run_id, "rejected")

        again = await example.trigger("phase-1")

        assert again.status_code == 202, again.text
        await example.wait_for_stage(again.json()["run_id"], "awaiting_approval")
        cancelled = await example.stack.post(
            f"/v1/runs/{again.json()['run_id']}/cancel", {"reason": "next attempt"}
        )
        assert cancelled.status_code == 200, cancelled.text


async def test_a_billed_run_reads_billed_only_with_its_lines_on_the_invoice(example: Example):
    response = await example.trigger("phase-1")
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        assert (await example.decide(run_id, role, person)).status_code == 202
    status = await read_until(example, run_id, "billed")

    invoice = (await example.stack.get(f"/v1/invoices/{status['invoice_id']}")).json()

    assert [line["kind"] for line in invoice["lines"] if line["run_id"] == run_id] == [
        "milestone",
        "retention_withheld",
    ]
