"""Notices that arrive: the approval request reaches a real SMTP server, and signed webhooks a
real HTTP receiver that verifies them with the Standard Webhooks library — retried with back-off,
recorded attempt by attempt, dead after the last one, and redelivered on an admin's word."""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from services.approval_links import read
from tests.conftest_stack import Example, Stack
from tests.e2e.hooks import Receiver
from tests.e2e.mail import Inbox, as_emailed, html_part, smtp_inbox, text_part, to
from tests.e2e.mail_stack import serve_mail_stack
from workflows.delivery import delivery_workflow_id

LINK_SECRET = "delivery-test-link-secret"
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as box:
        yield box


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
    inbox: Inbox,
) -> AsyncIterator[Stack]:
    """The whole stack delivering as it goes: mail to the test's SMTP server, back-off in
    milliseconds, three attempts."""
    backend: str = request.param
    directory: Path = tmp_path_factory.mktemp(f"delivery-{backend}")
    async with serve_mail_stack(
        backend,
        dev_server,
        directory,
        inbox,
        link_secret=LINK_SECRET,
        delivery_max_attempts=MAX_ATTEMPTS,
    ) as served:
        yield served


async def register(example: Example, receiver: Receiver, base: str, name: str) -> dict:
    response = await example.stack.post(
        "/v1/webhook-endpoints",
        {
            "url": f"{base}/{name}",
            "events": ["approval_requested"],
            "engagement_id": example.engagement["id"],
        },
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    assert endpoint["secret"].startswith("whsec_")
    receiver.secrets[name] = endpoint["secret"]
    return endpoint


async def trigger_phase_one(example: Example) -> tuple[str, dict]:
    pdf = await example.upload()
    response = await example.trigger(
        "phase-1",
        {"source": "test", "kpis": {"p95_latency_ms": "212"}, "evidence_ids": [pdf["id"]]},
    )
    assert response.status_code == 202, response.text
    return response.json()["run_id"], pdf


async def notifications(stack: Stack, **query: str) -> list[dict[str, Any]]:
    response = await stack.http.get("/v1/notifications", params=query, headers=stack.auth())
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def endpoint_row(stack: Stack, run_id: str, endpoint_id: str) -> dict[str, Any]:
    """The run's notification for one webhook endpoint, once the run has written it."""
    for _ in range(300):
        rows = await notifications(stack, run_id=run_id)
        mine = [n for n in rows if n["recipient_id"] == endpoint_id]
        if mine:
            return mine[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} wrote no notification for endpoint {endpoint_id}")


async def wait_for_status(stack: Stack, notification_id: int, status: str) -> dict[str, Any]:
    for _ in range(300):
        response = await stack.get(f"/v1/notifications/{notification_id}")
        if response.json()["status"] == status:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"notification {notification_id} never became {status}: {response.text}")


async def dead_webhook(
    example: Example, receiver: tuple[Receiver, str]
) -> tuple[str, dict[str, Any]]:
    """A webhook endpoint that answers 503 to every attempt, and its row of a run's first
    notice once that row is dead; the endpoint's name in the receiver, and the row."""
    hooks, base = receiver
    name = f"down-{uuid.uuid4().hex[:8]}"
    endpoint = await register(example, hooks, base, name)
    hooks.failures_left[name] = MAX_ATTEMPTS
    run_id, _ = await trigger_phase_one(example)
    row = await endpoint_row(example.stack, run_id, endpoint["id"])
    return name, await wait_for_status(example.stack, row["id"], "dead")


async def delivered_by_a_workflow(stack: Stack, notification_id: int) -> bool:
    """Whether the row needed a DeliverNotification workflow (its first attempt failed)."""
    workflow_id = delivery_workflow_id(stack.task_queue, notification_id)
    try:
        await stack.temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_the_approval_request_email_carries_a_signed_link_amounts_evidence_and_local_times(
    example: Example, inbox: Inbox
):
    started = time.perf_counter()
    run_id, pdf = await trigger_phase_one(example)
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    client = example.people["client"]

    [message] = await inbox.wait_for(to(client["email"], run_id))
    latency = next(t for t, m in inbox.messages if m is message) - started
    text, html = text_part(message), html_part(message)

    assert message["Subject"] == "[Tollgate] Approval requested: Assessment and cutover plan"
    assert "Platform migration" in text
    for amount in ("30,000.00", "3,000.00", "27,000.00"):
        assert amount in text and amount in html
    assert f"signoff.pdf (sha256 {pdf['sha256']})" in text
    assert "[PASS] p95" in text
    for deadline in status["deadlines"].values():
        if deadline:
            assert any(written in text for written in as_emailed(deadline))
    assert "America/New_York" in text
    deemed = as_emailed(status["deadlines"]["deemed_acceptance_at"])
    assert any(f"deemed accepted on {written}" in text for written in deemed)

    link = re.search(r"(http://\S+/approve/(\S+))", text)
    assert link is not None and link.group(1) in html
    grant = read(LINK_SECRET, link.group(2), datetime.now(UTC))
    assert (grant.run_id, grant.role, grant.principal_id) == (run_id, "client_ap", client["id"])
    # The link expires with the run: the email's deadlines are planned from the moment the run
    # asked for approval, a little after the run's own (from its opening), and the link keeps
    # whole seconds.
    run_expires = datetime.fromisoformat(status["deadlines"]["expire_at"]).replace(microsecond=0)
    assert timedelta(0) <= grant.expires_at - run_expires <= timedelta(seconds=5)
    lead = await inbox.wait_for(to(example.people["lead"]["email"], run_id))
    expiry = as_emailed(status["deadlines"]["expire_at"])
    assert any(
        f"If nobody decides for delivery_lead, this expires on {written}." in text_part(lead[0])
        for written in expiry
    )
    assert "deemed accepted on" not in text_part(lead[0])  # a lead's silence never accepts
    print(f"\n[delivery figures] approval email: trigger → SMTP server in {latency * 1000:.0f} ms")
    # Sent on the first try, straight from the worker: no workflow of its own was needed.
    [row] = [
        n
        for n in await notifications(example.stack, run_id=run_id)
        if n["recipient_id"] == client["id"] and n["kind"] == "approval_requested"
    ]
    await wait_for_status(example.stack, row["id"], "delivered")
    assert not await delivered_by_a_workflow(example.stack, row["id"])


async def test_a_webhook_that_fails_once_is_retried_with_the_same_webhook_id_and_a_valid_signature(
    example: Example, receiver: tuple[Receiver, str]
):
    hooks, base = receiver
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    endpoint = await register(example, hooks, base, name)
    hooks.failures_left[name] = 1

    run_id, _ = await trigger_phase_one(example)
    row = await endpoint_row(example.stack, run_id, endpoint["id"])
    await wait_for_status(example.stack, row["id"], "delivered")
    detail = (await example.stack.get(f"/v1/notifications/{row['id']}")).json()

    calls = hooks.of(name)
    assert [c["ok"] for c in calls] == [False, True]
    assert calls[0]["id"] == calls[1]["id"] == detail["message_id"]
    assert calls[1]["payload"]["type"] == "approval_requested"
    assert calls[1]["payload"]["data"]["run_id"] == run_id
    assert calls[1]["payload"]["data"]["amounts_minor"]["Gross"] == 3_000_000
    assert [(a["outcome"], a["response_code"]) for a in detail["attempt_log"]] == [
        ("failed", 503),
        ("delivered", 200),
    ]
    assert await delivered_by_a_workflow(example.stack, row["id"])  # the retry's back-off
    durations = [a["duration_ms"] for a in detail["attempt_log"]]
    print(f"\n[delivery figures] flaky webhook: {len(durations)} attempts, {durations} ms each")


async def test_a_webhook_that_always_fails_ends_dead_with_every_attempt_recorded_and_redelivers(
    example: Example, receiver: tuple[Receiver, str]
):
    hooks, _ = receiver
    name, dead = await dead_webhook(example, receiver)

    assert dead["attempts"] == MAX_ATTEMPTS
    assert [a["response_code"] for a in dead["attempt_log"]] == [503] * MAX_ATTEMPTS
    assert dead["last_error"].startswith("HTTP 503")
    listed = await notifications(example.stack, status="dead")
    assert dead["id"] in [n["id"] for n in listed]

    response = await example.stack.post(f"/v1/notifications/{dead['id']}/redeliver", {})
    assert response.status_code == 202, response.text
    delivered = await wait_for_status(example.stack, dead["id"], "delivered")
    assert len(delivered["attempt_log"]) == MAX_ATTEMPTS + 1
    assert len({c["id"] for c in hooks.of(name)}) == 1  # one webhook-id across all four
    again = await example.stack.post(f"/v1/notifications/{dead['id']}/redeliver", {})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    print(
        f"\n[delivery figures] dead webhook: {MAX_ATTEMPTS} attempts, then redelivered in 1; "
        f"backoff 50 ms doubling"
    )


async def test_a_redelivery_replaces_a_delivery_workflow_of_the_row_still_running(
    example: Example, receiver: tuple[Receiver, str]
):
    """A row goes dead as its workflow records the last attempt, and the workflow ends a moment
    later; a redelivery in that moment must start a delivery of its own, not join the one that
    is ending. Here a workflow no worker runs holds the row's workflow id for good."""
    _, row = await dead_webhook(example, receiver)
    stack = example.stack
    workflow_id = delivery_workflow_id(stack.task_queue, row["id"])
    for _ in range(100):  # the workflow that gave up has ended
        if (await stack.temporal.get_workflow_handle(workflow_id).describe()).close_time:
            break
        await asyncio.sleep(0.05)
    ending = await stack.temporal.start_workflow(
        "NoWorkerRunsThis", id=workflow_id, task_queue=f"{stack.task_queue}-nobody"
    )

    response = await stack.post(f"/v1/notifications/{row['id']}/redeliver", {})

    assert response.status_code == 202, response.text
    delivered = await wait_for_status(stack, row["id"], "delivered")
    assert len(delivered["attempt_log"]) == MAX_ATTEMPTS + 1
    held = stack.temporal.get_workflow_handle(workflow_id, run_id=ending.result_run_id)
    assert (await held.describe()).status.name == "TERMINATED"


async def test_approvers_hear_of_each_decision_and_of_the_billing_with_the_billed_amounts(
    example: Example, inbox: Inbox
):
    run_id, _ = await trigger_phase_one(example)
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert (await example.decide(run_id, "delivery_lead", "lead", comment="Plan ok")).is_success
    assert (await example.decide(run_id, "client_ap", "client")).is_success
    await example.wait_for_stage(run_id, "billed")
    client = example.people["client"]["email"]

    def about(subject_end: str) -> Callable[[Message], bool]:
        return lambda m: to(client, run_id)(m) and m["Subject"].endswith(subject_end)

    [lead_decided] = await inbox.wait_for(about("delivery_lead approved"))
    assert "delivery_lead approved (approver): Plan ok" in text_part(lead_decided)
    assert "30,000.00" in text_part(lead_decided)  # the facts of the request, repeated
    [billed] = await inbox.wait_for(about("billed"))
    assert "27,000.00" in text_part(billed) and "/approve/" not in text_part(billed)
