"""A run whose worker does not answer: a decision is a 503 problem, never a 500 and never a
decision recorded behind the caller's back, and a cancellation says the same."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from config import Settings
from db.models import Decision
from services.callers import Caller
from services.runs import start_run
from services.triggers import accept_trigger
from tests.api.problems import assert_problem
from tests.conftest_stack import Example
from tests.serving import served

TRIGGER = {"source": "test", "completion_percent": "100", "kpis": {}, "evidence_ids": []}


@pytest.fixture
async def impatient(example: Example) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the same database and Temporal, waiting one second for a run to answer."""
    stack = example.stack
    url = stack.sessions.kw["bind"].url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        admin_token=stack.admin_token,
        task_queue=stack.task_queue,
        update_patience_seconds=1,
    )
    app = create_app(settings, temporal=stack.temporal)
    async with served(app, settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        yield http


async def run_without_a_worker(example: Example) -> str:
    """A run whose task queue no worker polls: it never answers anything."""
    with example.stack.sessions() as session:
        accepted = accept_trigger(
            session,
            Caller("admin", "admin"),
            example.milestone("phase-1"),
            str(uuid.uuid4()),
            TRIGGER,
        )
    await start_run(example.stack.temporal, f"nobody-{uuid.uuid4()}", accepted.run)
    return accepted.run.run_id


async def test_a_decision_the_run_cannot_answer_is_a_503_and_records_nothing(
    example: Example, impatient: httpx.AsyncClient
):
    run_id = await run_without_a_worker(example)
    body = {"role": "client_ap", "decision": "approve"}

    response = await impatient.post(
        f"/v1/runs/{run_id}/decisions",
        json=body,
        headers=example.stack.auth(example.token("client")),
    )

    problem = assert_problem(response, 503)
    assert "Read the run before sending it again" in problem["detail"]
    with example.stack.sessions() as session:
        count = select(func.count()).select_from(Decision).where(Decision.run_id == run_id)
        assert session.scalar(count) == 0
    await example.stack.temporal.get_workflow_handle(run_id).terminate("test over")


async def test_a_cancellation_the_run_cannot_answer_is_a_503(
    example: Example, impatient: httpx.AsyncClient
):
    run_id = await run_without_a_worker(example)

    response = await impatient.post(
        f"/v1/runs/{run_id}/cancel", json={"reason": "wrong"}, headers=example.stack.auth()
    )

    assert_problem(response, 503)
    await example.stack.temporal.get_workflow_handle(run_id).terminate("test over")
