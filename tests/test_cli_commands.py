"""The operators' commands (``tollgate runs …``, ``tollgate audit verify``, ``tollgate documents
verify``), run as processes
against the real API, as an operator runs them."""

import asyncio
import io
import json
import logging
import os
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update

from db.models import AuditEvent
from tests.api.test_documents import billed_phase_1, pdf
from tests.conftest_stack import Example
from tests.test_cli import free_port
from tollgate_cli.logs import configure_json_logs

TOLLGATE = str(Path(sys.executable).with_name("tollgate"))


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def tollgate(example: Example, *args: str, token: str | None = None) -> Done:
    """Run ``tollgate ARGS`` without blocking the event loop that serves the API."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
        "TOLLGATE_API_URL": str(example.stack.http.base_url),
        "TOLLGATE_ADMIN_TOKEN": token or example.stack.admin_token,
        "COLUMNS": "250",  # rich folds long ids in narrower tables
    }
    process = await asyncio.create_subprocess_exec(
        TOLLGATE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def awaiting_approval(example: Example) -> str:
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    return run_id


async def test_runs_show_prints_the_stage_decisions_deadlines_amounts_and_audit_tail(
    example: Example,
):
    run_id = await awaiting_approval(example)
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    run = await example.run(run_id)

    done = await tollgate(example, "runs", "show", run_id)

    assert done.code == 0, done.err
    assert f"Run {run_id}" in done.out
    assert "awaiting_approval" in done.out
    assert "client_ap" in done.out  # still pending
    assert "delivery_lead" in done.out and "approve" in done.out  # decided
    assert run["deadlines"]["deemed_acceptance_at"] in done.out
    assert "gross 30,000.00 USD" in done.out
    assert "trigger_received" in done.out and "decision" in done.out


async def test_runs_show_as_json_gives_the_run_and_only_its_own_audit_events(example: Example):
    run_id = await awaiting_approval(example)

    done = await tollgate(example, "runs", "show", run_id, "--json", "--audit", "3")

    assert done.code == 0, done.err
    shown = done.json()
    assert (shown["run"]["run_id"], shown["run"]["stage"]) == (run_id, "awaiting_approval")
    assert len(shown["audit"]) == 3
    assert {event["run_id"] for event in shown["audit"]} == {run_id}


async def test_runs_cancel_with_a_reason_ends_the_run_cancelled(example: Example):
    run_id = await awaiting_approval(example)

    done = await tollgate(example, "runs", "cancel", run_id, "--reason", "Triggered by mistake")

    assert done.code == 0, done.err
    assert f"Run {run_id} is cancelled" in done.out
    assert "Triggered by mistake" in done.out
    assert (await example.run(run_id))["stage"] == "cancelled"


async def test_a_refused_cancellation_is_printed_plainly_and_exits_non_zero(example: Example):
    run_id = await awaiting_approval(example)
    await example.decide(run_id, "delivery_lead", "lead")
    await example.decide(run_id, "client_ap", "client")
    await example.wait_for_stage(run_id, "billed")

    done = await tollgate(example, "runs", "cancel", run_id, "--reason", "Too late")

    assert done.code == 1
    assert done.err.startswith("Error: 409 ")
    assert "Traceback" not in done.err
    assert (await example.run(run_id))["stage"] == "billed"


async def test_an_unknown_run_or_a_wrong_token_says_so_and_exits_non_zero(example: Example):
    unknown = await tollgate(example, "runs", "show", "milestone:eng_nope:phase-1:0123456789ab")
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err.startswith("Error: 404 ")

    refused = await tollgate(example, "runs", "list", token="not-a-token")
    assert refused.code == 1
    assert refused.err.startswith("Error: 401 ")


async def test_runs_list_finds_a_run_by_engagement_stage_and_age(example: Example):
    run_id = await awaiting_approval(example)
    engagement = example.engagement["id"]

    def ids(done: Any) -> list[str]:
        assert done.code == 0, done.err
        return [item["run_id"] for item in done.json()["items"]]

    waiting = await tollgate(
        example,
        "runs",
        "list",
        "--engagement",
        engagement,
        "--stage",
        "awaiting_approval",
        "--json",
    )
    billed = await tollgate(
        example, "runs", "list", "--engagement", engagement, "--stage", "billed", "--json"
    )
    old = await tollgate(example, "runs", "list", "--engagement", engagement, "--older-than", "3d")
    table = await tollgate(example, "runs", "list", "--engagement", engagement)

    assert ids(waiting) == [run_id]
    assert ids(billed) == []
    assert old.code == 0 and run_id not in old.out and "0 run(s)" in old.out
    assert table.code == 0 and run_id in table.out and "awaiting_approval" in table.out


async def test_runs_list_pages_through_the_api_up_to_the_limit(example: Example):
    first = await awaiting_approval(example)
    await example.decide(first, "client_ap", "client", "reject", "Not done")
    await example.wait_for_stage(first, "rejected")
    second = await awaiting_approval(example)
    engagement = example.engagement["id"]

    one = await tollgate(example, "runs", "list", "--engagement", engagement, "--limit", "1")
    both = await tollgate(example, "runs", "list", "--engagement", engagement, "--json")

    assert one.code == 0 and first in one.out and second not in one.out
    assert "1 run(s); more with --limit 2" in one.out
    assert [item["run_id"] for item in both.json()["items"]] == [first, second]


async def test_a_malformed_age_is_refused_before_asking_the_api(example: Example):
    done = await tollgate(example, "runs", "list", "--older-than", "soon")

    assert done.code == 2
    assert "expected e.g. 3d" in done.err


async def test_audit_verify_says_the_chain_verifies_and_exits_1_once_an_event_is_altered(
    example: Example,
):
    run_id = await awaiting_approval(example)
    engagement = example.engagement["id"]

    intact = await tollgate(example, "audit", "verify", engagement)
    assert intact.code == 0, intact.err
    assert f"The audit chain of {engagement} verifies" in intact.out

    with example.stack.sessions.begin() as session:
        seq = session.scalar(select(AuditEvent.seq).where(AuditEvent.run_id == run_id).limit(1))
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.engagement_id == engagement, AuditEvent.seq == seq)
            .values(actor="someone-else")
        )
    broken = await tollgate(example, "audit", "verify", engagement)
    as_json = await tollgate(example, "audit", "verify", engagement, "--json")

    assert broken.code == 1
    assert f"broken at event {seq}" in broken.err
    assert (as_json.code, as_json.json()["ok"], as_json.json()["first_bad_seq"]) == (1, False, seq)


async def test_documents_verify_names_the_invoice_a_pdf_is_and_exits_1_for_an_altered_copy(
    example: Example, tmp_path: Path
):
    _, invoice_id, _ = await billed_phase_1(example)
    invoice = (await example.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)).json()
    sent = tmp_path / "invoice.pdf"
    sent.write_bytes(await pdf(example, f"/v1/invoices/{invoice_id}.pdf"))
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(sent.read_bytes().replace(b"%%EOF", b"%%EOF\n% edited"))

    issued = await tollgate(example, "documents", "verify", str(sent))
    as_json = await tollgate(example, "documents", "verify", str(sent), "--json")
    forged = await tollgate(example, "documents", "verify", str(altered))
    forged_json = await tollgate(example, "documents", "verify", str(altered), "--json")

    assert issued.code == 0, issued.err
    assert f"is invoice {invoice['number']} ({invoice_id})" in issued.out
    assert invoice["document_sha256"] in issued.out
    assert as_json.json()["issued"] is True and as_json.json()["number"] == invoice["number"]
    assert forged.code == 1 and "not a document Tollgate issued" in forged.err
    assert (forged_json.code, forged_json.json()["issued"]) == (1, False)


async def test_a_closeout_has_a_readable_id_that_runs_show_takes(example: Example):
    engagement = example.engagement["id"]
    waive = [{"milestone": key, "reason": "Descoped"} for key in ("phase-1", "phase-2", "phase-3")]
    response = await example.stack.post(f"/v1/engagements/{engagement}/closeout", {"waive": waive})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")

    done = await tollgate(example, "runs", "show", run_id)

    assert run_id == f"closeout:{engagement}:1"
    assert done.code == 0, done.err
    assert f"Run {run_id}" in done.out and "closeout" in done.out


async def test_a_change_order_has_a_readable_id_that_runs_list_shows(example: Example):
    engagement = example.engagement["id"]
    body = {
        "reason": "Phase 3 grows",
        "changes": {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]},
    }
    response = await example.stack.post(f"/v1/engagements/{engagement}/change-orders", body)
    assert response.status_code == 202, response.text
    order = response.json()

    done = await tollgate(example, "runs", "list", "--engagement", engagement, "--json")

    assert order["run_id"] == f"change-order:{engagement}:{order['id']}"
    assert done.code == 0, done.err
    assert [(i["run_id"], i["kind"]) for i in done.json()["items"]] == [
        (order["run_id"], "change_order")
    ]


async def test_the_worker_serves_the_temporal_sdk_metrics_on_its_port(example: Example):
    stack = example.stack
    with stack.sessions() as session:
        database_url = session.get_bind().url.render_as_string(hide_password=False)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
        "TOLLGATE_DATABASE_URL": database_url,
        "TOLLGATE_TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "TOLLGATE_TASK_QUEUE": f"metrics-{uuid.uuid4()}",  # takes none of the stack's work
        "TOLLGATE_WORKER_METRICS_PORT": str(port),
        "TOLLGATE_RECONCILE_EVERY_SECONDS": "0",
        "TOLLGATE_FINALIZE_CRON": "",
        "TOLLGATE_DELIVERY_SWEEP_EVERY_SECONDS": "0",
    }
    worker = await asyncio.create_subprocess_exec(
        TOLLGATE, "worker", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    text = ""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(300):
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    text = ""
                if "temporal_num_pollers" in text:
                    break
                await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(worker.communicate(), timeout=60)

    assert "temporal_num_pollers" in text, err.decode()
    assert f"Worker metrics http://127.0.0.1:{port}/metrics" in out.decode()
    # Not its exit code: the SDK's threads sometimes abort the interpreter's exit (as before).
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert logs, f"the worker logged no JSON: {err.decode()}"
    assert all({"event", "level", "timestamp", "logger"} <= line.keys() for line in logs)


def test_a_log_line_from_an_activity_names_its_run_and_engagement():
    record = logging.LogRecord("temporalio.activity", logging.INFO, "", 0, "posted", None, None)
    record.temporal_activity = {
        "workflow_id": "milestone:eng_1a2b:phase-1:0123456789ab",
        "activity_type": "post_billing",
        "attempt": 1,
    }
    handler = logging.StreamHandler(io.StringIO())
    configure_json_logs()
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    try:
        handler.emit(record)
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()

    line = json.loads(handler.stream.getvalue())

    assert line["run_id"] == "milestone:eng_1a2b:phase-1:0123456789ab"
    assert (line["engagement_id"], line["activity_type"], line["event"]) == (
        "eng_1a2b",
        "post_billing",
        "posted",
    )


async def test_notifications_list_shows_a_runs_approval_requests_and_redeliver_refuses_a_live_one(
    example: Example,
):
    run_id = await awaiting_approval(example)
    listed: list[dict[str, Any]] = []
    for _ in range(100):  # written by the run's activity once it awaits approval
        done = await tollgate(example, "notifications", "list", "--run", run_id, "--json")
        assert done.code == 0, done.err
        listed = [n for n in done.json()["items"] if n["kind"] == "approval_requested"]
        if len(listed) == 2:
            break
        await asyncio.sleep(0.1)
    recipients = {n["recipient_id"] for n in listed}
    assert recipients == {example.people["lead"]["id"], example.people["client"]["id"]}
    table = await tollgate(example, "notifications", "list", "--run", run_id)
    assert table.code == 0 and "approval_requested" in table.out

    live = next(n for n in listed if n["status"] != "dead")
    refused = await tollgate(example, "notifications", "redeliver", str(live["id"]))

    assert refused.code == 1
    assert refused.err.startswith("Error: 409 ")
