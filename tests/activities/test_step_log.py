"""The worker's step log: a JSON line as each activity attempt starts and ends, through the
worker's own interceptors on a real Temporal dev server, read from the JSON logs' stream."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import structlog
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.step_log import run_fields
from tollgate_cli.logs import configure_json_logs
from worker import activity_interceptors

RETRY_QUICKLY = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=3)


@activity.defn
def flaky(order: str) -> str:
    """Loses its connection on the first attempt; logs from inside on each."""
    logging.getLogger("tollgate.test").info("posting %s", order)
    if activity.info().attempt == 1:
        raise ConnectionError("connection reset by peer")
    return f"posted {order}"


@activity.defn
def broken(order: str) -> str:
    raise ValueError(f"order {order} has no lines")


@workflow.defn(sandboxed=False)
class Steps:
    @workflow.run
    async def run(self, order: str) -> str:
        posted = await workflow.execute_activity(
            flaky, order, start_to_close_timeout=timedelta(seconds=10), retry_policy=RETRY_QUICKLY
        )
        try:
            await workflow.execute_activity(
                broken,
                order,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RETRY_QUICKLY,
            )
        except ActivityError:
            return f"{posted}, then failed"
        return posted


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_json_logs(stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


async def test_each_attempt_is_logged_as_it_starts_and_ends_with_its_outcome(
    dev_server: WorkflowEnvironment, json_logs: io.StringIO
):
    task_queue = f"step-log-{uuid.uuid4()}"
    run_id = f"milestone:eng_steps:phase-1:{uuid.uuid4().hex[:12]}"
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[Steps],
        activities=[flaky, broken],
        activity_executor=ThreadPoolExecutor(max_workers=2),
        interceptors=activity_interceptors(),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await dev_server.client.execute_workflow(
            Steps.run, "o-1", id=run_id, task_queue=task_queue
        )
    assert result == "posted o-1, then failed"

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    steps = [line for line in lines if line["logger"] == "tollgate.worker"]
    assert [(s["activity"], s["attempt"], s["event"], s.get("outcome")) for s in steps] == [
        ("flaky", 1, "activity started", None),
        ("flaky", 1, "activity ended", "retry"),
        ("flaky", 2, "activity started", None),
        ("flaky", 2, "activity ended", "ok"),
        ("broken", 1, "activity started", None),
        ("broken", 1, "activity ended", "failed"),  # permanent: not retried
    ]
    ids = {"workflow_id": run_id, "run_id": run_id, "engagement_id": "eng_steps"}
    assert all(_has(step, ids) for step in steps)
    ended = [s for s in steps if s["event"] == "activity ended"]
    assert all(isinstance(s["duration_ms"], int) and s["duration_ms"] >= 0 for s in ended)
    assert [s["level"] for s in ended] == ["warning", "info", "error"]
    retried, _, failed = ended
    assert (retried["error_type"], retried["error"]) == (
        "ConnectionError",
        "connection reset by peer",
    )
    # PermanentErrors made the ValueError non-retryable; its class is kept in the message.
    assert failed["error_type"] == "PermanentError"
    assert failed["error"] == "ValueError: order o-1 has no lines"
    assert "error" not in steps[3]

    inside = [line for line in lines if line["logger"] == "tollgate.test"]
    assert [line["event"] for line in inside] == ["posting o-1", "posting o-1"]
    assert [line["attempt"] for line in inside] == [1, 2]
    assert all(_has(line, {**ids, "activity": "flaky"}) for line in inside)


def _has(line: dict[str, Any], fields: dict[str, Any]) -> bool:
    return {key: line.get(key) for key in fields} == fields


@pytest.mark.parametrize(
    ("workflow_id", "fields"),
    [
        ("milestone:eng_1:phase-1:0a1b", {"engagement_id": "eng_1"}),
        ("closeout:eng_2:1", {"engagement_id": "eng_2"}),
        ("change-order:eng_3:co_9", {"engagement_id": "eng_3"}),
        ("tollgate-reconcile-2026-01-01T00:00:00Z", {}),
    ],
)
def test_a_run_names_its_engagement_only_when_its_id_does(workflow_id: str, fields: dict[str, str]):
    assert run_fields(workflow_id) == {"run_id": workflow_id, **fields}
