"""Webhook endpoints and notifications over HTTP: what an admin may register and list, and what
is refused (problem+json, nothing changed)."""

import asyncio
import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from db.models import WebhookEndpoint
from tests.api.problems import assert_problem
from tests.conftest_stack import Example


def endpoints(example: Example) -> int:
    with example.stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0


async def test_an_admin_registers_an_endpoint_and_sees_its_generated_secret_once(example: Example):
    response = await example.stack.post(
        "/v1/webhook-endpoints",
        {
            "url": "https://hooks.example.com/tollgate",
            "events": ["approval_requested", "run_billed", "approval_requested"],
            "customer_id": example.customer["id"],
        },
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    assert endpoint["events"] == ["approval_requested", "run_billed"]
    assert endpoint["customer_id"] == example.customer["id"]
    key = base64.b64decode(endpoint["secret"].removeprefix("whsec_"))
    assert endpoint["secret"].startswith("whsec_") and len(key) == 32


async def test_an_endpoint_may_subscribe_to_the_invoice_and_clawback_notices(example: Example):
    response = await example.stack.post(
        "/v1/webhook-endpoints",
        {
            "url": "https://hooks.example.com/billing",
            "events": ["invoice_finalized", "clawback_issued"],
            "customer_id": example.customer["id"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["events"] == ["clawback_issued", "invoice_finalized"]


async def test_a_given_secret_is_kept_as_given(example: Example):
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    response = await example.stack.post(
        "/v1/webhook-endpoints",
        {
            "url": "http://127.0.0.1:9/hook",
            "events": ["run_failed"],
            "engagement_id": example.engagement["id"],
            "secret": secret,
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["secret"] == secret


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/" + "a" * 2100}, "url"),
        ({"events": []}, "events"),
        ({"events": ["payment_received"]}, "events"),
        ({"secret": "not-a-secret"}, "secret"),
        ({"secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
        ({"engagement_id": "eng_unknown"}, "engagement_id"),
    ],
)
async def test_a_bad_endpoint_is_refused_with_the_field_and_nothing_is_registered(
    example: Example, change: dict, field: str
):
    before = endpoints(example)
    body = {
        "url": "https://hooks.example.com/tollgate",
        "events": ["approval_requested"],
        "engagement_id": example.engagement["id"],
    }
    response = await example.stack.post("/v1/webhook-endpoints", body | change)
    assert_problem(response, 422, field)
    assert endpoints(example) == before


async def test_an_endpoint_names_exactly_one_owner(example: Example):
    body = {"url": "https://hooks.example.com/t", "events": ["reminder"]}
    both = {"engagement_id": example.engagement["id"], "customer_id": example.customer["id"]}
    assert_problem(await example.stack.post("/v1/webhook-endpoints", body), 422)
    assert_problem(await example.stack.post("/v1/webhook-endpoints", body | both), 422)


async def test_only_an_admin_registers_endpoints_or_reads_notifications(example: Example):
    token = example.token("lead")
    body = {
        "url": "https://hooks.example.com/t",
        "events": ["reminder"],
        "engagement_id": example.engagement["id"],
    }
    assert_problem(await example.stack.post("/v1/webhook-endpoints", body, token), 403)
    assert_problem(await example.stack.get("/v1/notifications", token), 403)
    assert_problem(await example.stack.post("/v1/notifications/1/redeliver", {}, token), 403)


async def test_listing_notifications_refuses_an_unknown_status_and_an_unbounded_page(
    example: Example,
):
    assert_problem(await example.stack.get("/v1/notifications?status=lost"), 422)
    assert_problem(await example.stack.get("/v1/notifications?limit=100000"), 422)
    response = await example.stack.get("/v1/notifications?status=dead&limit=5")
    assert response.status_code == 200, response.text
    assert all(n["status"] == "dead" for n in response.json()["items"])


async def notifications_of(example: Example, run_id: str) -> list[dict[str, Any]]:
    """The run's notifications once there are some: the run shows ``awaiting_approval`` before
    the activity that writes its approval requests has committed them."""
    for _ in range(200):
        response = await example.stack.get(f"/v1/notifications?run_id={run_id}")
        assert response.status_code == 200, response.text
        if items := response.json()["items"]:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"no notification about {run_id} was written")


async def test_redelivering_an_unknown_or_living_notification_is_refused(example: Example):
    assert_problem(await example.stack.post("/v1/notifications/999999999/redeliver", {}), 404)
    response = await example.trigger("phase-1")
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    [first, *_] = await notifications_of(example, run_id)
    assert first["kind"] == "approval_requested" and first["status"] != "dead"
    body = assert_problem(
        await example.stack.post(f"/v1/notifications/{first['id']}/redeliver", {}), 409
    )
    assert body["type"].endswith("notification-not-dead")
