"""Inbound sources over real HTTP on both databases: deliveries signed with the standardwebhooks
library trigger, bill once and replay; bad signatures leave nothing; mapping failures and
ignored payloads are answered and logged; secrets rotate with an overlap; sources deactivate."""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from standardwebhooks import Webhook

from db.models import Run, Trigger
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

ALERTMANAGER_SAMPLE = (
    Path(__file__).parents[1] / "fixtures" / "sources" / "alertmanager-webhook-v4.json"
).read_bytes()
FIRING = ALERTMANAGER_SAMPLE.replace(b'"status": "resolved"', b'"status": "firing"')


async def register(example: Example, body: dict[str, Any]) -> dict[str, Any]:
    response = await example.stack.post(f"/v1/engagements/{example.engagement['id']}/sources", body)
    assert response.status_code == 201, response.text
    return response.json()


async def alertmanager_source(example: Example) -> dict[str, Any]:
    return await register(
        example,
        {
            "kind": "alertmanager",
            "name": "Uptime SLO",
            "alertname": "PlatformUptimeSLOMet",
            "milestone": "phase-1",
            "kpis": {"p95_latency_ms": "p95_latency_ms", "uptime_pct": "uptime"},
        },
    )


async def deliver(
    example: Example,
    source: dict[str, Any],
    payload: bytes,
    secret: str | None = None,
    webhook_id: str | None = None,
) -> httpx.Response:
    """POST the payload signed as the standardwebhooks library signs (a fresh timestamp)."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret or source["secret"]).sign(
            webhook_id, now, payload.decode()
        ),
    }
    return await example.stack.http.post(
        f"/v1/hooks/{source['id']}", content=payload, headers=headers
    )


async def log(example: Example, source: dict[str, Any]) -> list[dict[str, Any]]:
    response = await example.stack.get(f"/v1/sources/{source['id']}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def count(example: Example, model: type, milestone_id: str) -> int:
    with example.stack.sessions() as session:
        where = model.milestone_id == milestone_id
        return session.scalar(select(func.count()).select_from(model).where(where)) or 0


async def milestone_state(example: Example, key: str) -> tuple[str, str | None]:
    engagement = await example.refresh()
    state = next(m for m in engagement["milestones"] if m["key"] == key)
    return state["status"], state["open_run_id"]


async def test_a_signed_resolved_alertmanager_alert_triggers_and_bills_the_milestone_once(
    example: Example,
):
    source = await alertmanager_source(example)
    first = await deliver(example, source, ALERTMANAGER_SAMPLE, webhook_id="msg_resolved")
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]

    again = await deliver(example, source, ALERTMANAGER_SAMPLE, webhook_id="msg_resolved")
    assert (again.status_code, again.json()) == (202, first.json())

    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert {c["id"]: c["passed"] for c in status["criteria"]} == {"plan": None, "p95": True}
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        assert (await example.decide(run_id, role, person)).status_code == 202
    billed = await example.wait_for_stage(run_id, "billed")

    invoice = (await example.stack.get(f"/v1/invoices/{billed['invoice_id']}")).json()
    milestone_lines = [line for line in invoice["lines"] if line["kind"] == "milestone"]
    assert [line["amount_minor"] for line in milestone_lines] == [3_000_000]
    [evidence] = milestone_lines[0]["evidence"]
    download = await example.stack.http.get(
        f"/v1/evidence/{evidence['id']}", headers=example.stack.auth()
    )
    assert download.content == ALERTMANAGER_SAMPLE  # exactly what Alertmanager said
    assert download.headers["content-type"].startswith("application/json")

    after = await deliver(example, source, ALERTMANAGER_SAMPLE, webhook_id="msg_resolved")
    assert (after.status_code, after.json()) == (202, first.json())
    another = await deliver(example, source, ALERTMANAGER_SAMPLE, webhook_id="msg_next_day")
    assert assert_problem(another, 409)["type"].endswith("milestone-accepted")

    milestone_id = example.milestone("phase-1")
    assert count(example, Run, milestone_id) == count(example, Trigger, milestone_id) == 1
    logged = await log(example, source)
    assert [(d["webhook_id"], d["outcome"], d["status_code"]) for d in logged] == [
        ("msg_resolved", "accepted", 202),
        ("msg_next_day", "refused", 409),
    ]
    assert logged[0]["run_id"] == run_id
    assert logged[0]["payload_sha256"] == evidence["sha256"]


async def test_a_delivery_without_a_valid_signature_is_401_and_leaves_nothing(example: Example):
    source = await alertmanager_source(example)
    stranger = "whsec_" + "A" * 43 + "="
    url = f"/v1/hooks/{source['id']}"
    tampered = await example.stack.http.post(
        url,
        content=ALERTMANAGER_SAMPLE.replace(b"99.95", b"99.99"),
        headers=signed_headers(source["secret"], ALERTMANAGER_SAMPLE),
    )
    refusals = [
        tampered,
        await deliver(example, source, ALERTMANAGER_SAMPLE, secret=stranger),
        await example.stack.http.post(url, content=ALERTMANAGER_SAMPLE),
    ]
    for response in refusals:
        assert_problem(response, 401)
    assert await log(example, source) == []
    assert await milestone_state(example, "phase-1") == ("pending", None)


def signed_headers(secret: str, payload: bytes) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": "msg_tampered",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_tampered", now, payload.decode()),
    }


async def test_a_mapping_failure_is_422_naming_the_expression_logged_and_triggers_nothing(
    example: Example,
):
    source = await register(
        example,
        {
            "kind": "mapping",
            "name": "Delivery tracker",
            "mapping": {"milestone": "issue.milestone", "kpis": {"p95_latency_ms": "perf.p95"}},
        },
    )
    missing = await deliver(example, source, b'{"issue": {"milestone": "phase-1"}}', webhook_id="a")
    body = assert_problem(missing, 422, "mapping.kpis.p95_latency_ms")
    assert "perf.p95" in body["detail"] and "null" in body["detail"]
    other = b'{"issue": {"milestone": "phase-9"}, "perf": {"p95": 200}}'
    unknown = await deliver(example, source, other, webhook_id="b")
    assert "phase-9" in assert_problem(unknown, 422, "mapping.milestone")["detail"]

    replay = await deliver(example, source, b'{"issue": {"milestone": "phase-1"}}', webhook_id="a")
    assert (replay.status_code, replay.json()) == (422, body)
    logged = await log(example, source)
    assert [(d["webhook_id"], d["outcome"], d["status_code"]) for d in logged] == [
        ("a", "refused", 422),
        ("b", "refused", 422),
    ]
    assert logged[0]["response"] == body and logged[0]["run_id"] is None
    assert await milestone_state(example, "phase-1") == ("pending", None)


async def test_an_ignored_payload_is_200_and_logged_and_a_float_kpi_arrives_exact(
    example: Example,
):
    source = await alertmanager_source(example)
    ignored = await deliver(example, source, FIRING, webhook_id="msg_firing")
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["ignored"] is True and "status == 'resolved'" in ignored.json()["reason"]
    assert [(d["outcome"], d["status_code"]) for d in await log(example, source)] == [
        ("ignored", 200)
    ]
    assert await milestone_state(example, "phase-1") == ("pending", None)

    generic = await register(example, {"kind": "generic", "name": "CI"})
    payload = b'{"milestone": "phase-1", "kpis": {"p95_latency_ms": 212.50, "uptime": 99.95}}'
    accepted = await deliver(example, generic, payload)
    assert accepted.status_code == 202, accepted.text
    with example.stack.sessions() as session:
        trigger = session.scalars(
            select(Trigger).where(Trigger.run_id == accepted.json()["run_id"])
        ).one()
    assert trigger.body["kpis"] == {"p95_latency_ms": "212.50", "uptime": "99.95"}
    assert trigger.body["source"] == "CI"


async def test_registration_refuses_bad_expressions_and_unknown_milestones_and_is_audited(
    example: Example,
):
    path = f"/v1/engagements/{example.engagement['id']}/sources"
    bad = {
        "kind": "mapping",
        "name": "x",
        "mapping": {"milestone": "'phase-1'", "kpis": {"up": "avg(a"}},
    }
    body = assert_problem(await example.stack.post(path, bad), 422, "mapping.kpis.up")
    assert "jmespath" in body["detail"].lower()
    unknown = {"kind": "alertmanager", "name": "x", "alertname": "A", "milestone": "phase-9"}
    assert_problem(await example.stack.post(path, unknown), 422, "milestone")
    assert_problem(await example.stack.post(path, {"kind": "nagios", "name": "x"}), 422)

    source = await alertmanager_source(example)
    assert source["secret"].startswith("whsec_")
    assert source["url"].endswith(f"/v1/hooks/{source['id']}")
    shown = (await example.stack.get(f"/v1/sources/{source['id']}")).json()
    assert "secret" not in shown and shown["mapping"] == source["mapping"]
    listed = (await example.stack.get(path)).json()["items"]
    assert [s["id"] for s in listed] == [source["id"]]
    forbidden = await example.stack.get(path, example.token("lead"))
    assert_problem(forbidden, 403)
    trail = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    created = [e for e in trail.json()["items"] if e["kind"] == "source_created"]
    assert [e["data"]["source_id"] for e in created] == [source["id"]]


async def test_a_rotated_secret_overlaps_then_expires_and_a_deactivated_source_is_gone(
    example: Example,
):
    source = await alertmanager_source(example)
    original = source["secret"]
    rotated = await example.stack.post(f"/v1/sources/{source['id']}/rotate-secret", None)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["secret"]
    assert second != original and rotated.json()["previous_secret_valid_until"] is not None
    for secret in (original, second):
        assert (await deliver(example, source, FIRING, secret=secret)).status_code == 200

    again = await example.stack.post(
        f"/v1/sources/{source['id']}/rotate-secret", {"overlap_hours": 0}
    )
    third = again.json()["secret"]
    assert_problem(await deliver(example, source, FIRING, secret=second), 401)
    assert (await deliver(example, source, FIRING, secret=third)).status_code == 200

    gone = await example.stack.http.delete(
        f"/v1/sources/{source['id']}", headers=example.stack.auth()
    )
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert_problem(await deliver(example, source, FIRING, secret=third), 410)
    rotate_gone = await example.stack.post(f"/v1/sources/{source['id']}/rotate-secret", None)
    assert_problem(rotate_gone, 410)

    trail = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    kinds = [e["kind"] for e in trail.json()["items"] if e["kind"].startswith("source_")]
    assert kinds == [
        "source_created",
        "source_secret_rotated",
        "source_secret_rotated",
        "source_deactivated",
    ]
