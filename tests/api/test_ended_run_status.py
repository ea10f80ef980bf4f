"""Reading a run that ended: what its workflow returned, kept by Temporal with the closed
workflow, rather than a query that makes a worker replay the run's whole history."""

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput

from api.app import create_app
from config import Settings
from services.runs import query_status
from tests.conftest_stack import Example
from tests.serving import served

SHOWN = ("stage", "pending_roles", "escalated_roles", "decisions", "deadlines", "criteria")
APPROVERS = (("delivery_lead", "lead"), ("client_ap", "client"))


class CountQueries(Interceptor):
    """Remembers which runs the API asked by query."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        asked = self.asked

        class Counting(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                asked.append(input.id)
                return await super().query_workflow(input)

        return Counting(next)


@pytest.fixture
async def counted(example: Example) -> AsyncIterator[tuple[httpx.AsyncClient, CountQueries]]:
    """A second API on the same database and Temporal, whose queries are counted."""
    stack, queries = example.stack, CountQueries()
    temporal = Client(
        stack.temporal.service_client, namespace=stack.temporal.namespace, interceptors=[queries]
    )
    url = stack.sessions.kw["bind"].url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url, admin_token=stack.admin_token, task_queue=stack.task_queue
    )
    async with (
        served(create_app(settings, temporal=temporal), settings) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        yield http, queries


async def billed_run(example: Example) -> str:
    response = await example.trigger("phase-1")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in APPROVERS:
        decided = await example.decide(run_id, role, person)
        assert decided.status_code == 202, decided.text
    await example.stack.temporal.get_workflow_handle(run_id).result()  # closed
    return run_id


async def test_a_billed_run_reads_what_its_workflow_returned_without_asking_a_worker(
    example: Example, counted: tuple[httpx.AsyncClient, CountQueries]
):
    http, queries = counted
    run_id = await billed_run(example)

    response = await http.get(f"/v1/runs/{run_id}", headers=example.stack.auth())

    assert response.status_code == 200, response.text
    read = response.json()
    assert queries.asked == []
    asked = asdict(await query_status(example.stack.temporal, run_id))
    assert {k: read[k] for k in SHOWN} == {k: asked[k] for k in SHOWN}
    assert read["stage"] == "billed" and read["criteria"] and read["deadlines"]["expire_at"]
    assert read["amounts"] == asked["amounts"] and read["invoice_id"] == asked["invoice_id"]


async def test_a_run_awaiting_approval_is_asked_for_its_status(
    example: Example, counted: tuple[httpx.AsyncClient, CountQueries]
):
    http, queries = counted
    response = await example.trigger("phase-1")
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")

    read = (await http.get(f"/v1/runs/{run_id}", headers=example.stack.auth())).json()

    assert queries.asked == [run_id]
    assert sorted(read["pending_roles"]) == ["client_ap", "delivery_lead"]
    cancelled = await example.stack.post(f"/v1/runs/{run_id}/cancel", {"reason": "test over"})
    assert cancelled.status_code == 200, cancelled.text


async def test_a_released_close_out_reads_what_it_returned_without_asking_a_worker(
    example: Example, counted: tuple[httpx.AsyncClient, CountQueries]
):
    http, queries = counted
    path = f"/v1/engagements/{example.engagement['id']}/closeout"
    milestones = example.engagement["milestones"]
    waive = [{"milestone": m["key"], "reason": "Descoped"} for m in milestones]
    started = await example.stack.post(path, {"waive": waive})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in APPROVERS:
        decided = await example.decide(run_id, role, person, comment="All delivered")
        assert decided.status_code == 202, decided.text
    await example.stack.temporal.get_workflow_handle(run_id).result()  # closed

    read = (await http.get(path, headers=example.stack.auth())).json()

    assert queries.asked == []
    asked = asdict(await query_status(example.stack.temporal, run_id))
    assert (read["run_id"], read["stage"]) == (run_id, "released")
    assert read["details"] == asked["details"]
    assert {k: read[k] for k in SHOWN} == {k: asked[k] for k in SHOWN}
