"""Traces and the worker's step log end to end: ``tollgate worker`` as a real process and the API
over real HTTP, both told only the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``, exporting to an
OTLP/HTTP receiver served by this test; the worker's JSON log read from its stderr."""

import asyncio
import gzip
import json
import secrets
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

import telemetry
from api.app import create_app
from config import Settings
from db.session import make_engine, make_session_factory
from tests.conftest import database
from tests.conftest_stack import Example, Stack, new_example
from tests.processes import TemporalDevServer, WorkerProcess, free_port, log_tail
from tests.serving import served

TRIGGER_ROUTE = "/v1/milestones/{milestone_id}/triggers"
DECISION_ROUTE = "/v1/runs/{run_id}/decisions"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    service: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of each linked span


@dataclass
class Receiver:
    """What an OTLP/HTTP collector was sent on ``/v1/traces``, decoded from protobuf."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self.lock:
                        self.spans.append(
                            Span(
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                span.name,
                                span.kind,
                                str(resource.get("service.name")),
                                _attributes(span.attributes),
                                tuple((ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links),
                            )
                        )

    def received(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in pairs}


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                receiver.refused.append(self.path)
                self.send_response(404)
                self.end_headers()
                return
            receiver.accept(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Traced:
    example: Example
    receiver: Receiver
    worker: WorkerProcess


@pytest.fixture(scope="module")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Traced]:
    """A dev server and ``tollgate worker`` as processes, the API in this process, all tracing
    to one receiver; a run of phase 1 triggered, approved by both roles and billed, and then
    the worker stopped (SIGTERM), so its log is complete and its spans flushed."""
    directory = tmp_path_factory.mktemp("telemetry")
    with (
        otlp_receiver() as receiver,
        database("sqlite", directory) as url,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: the API's spans arrive promptly
        env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        env.delenv("OTEL_SERVICE_NAME", raising=False)
        telemetry.tracing.cache_clear()
        task_queue = f"tollgate-telemetry-{uuid.uuid4()}"
        temporal = TemporalDevServer(
            "temporal", directory / "temporal.log", db_file=directory / "t.db", port=free_port()
        )
        worker = WorkerProcess(
            "worker",
            directory / "worker.log",
            settings={
                "TOLLGATE_DATABASE_URL": url,
                "TOLLGATE_TEMPORAL_ADDRESS": temporal.address,
                "TOLLGATE_TASK_QUEUE": task_queue,
                "TOLLGATE_FINALIZE_CRON": "",
                "TOLLGATE_RECONCILE_EVERY_SECONDS": "0",
                "TOLLGATE_DELIVERY_SWEEP_EVERY_SECONDS": "0",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                # Ten minutes: the worker's spans can only arrive by the flush as it stops.
                "OTEL_BSP_SCHEDULE_DELAY": "600000",
            },
        )
        settings = Settings(
            database_url=url, admin_token=secrets.token_urlsafe(24), task_queue=task_queue
        )
        engine = make_engine(url)
        try:
            temporal.start()
            client = await temporal.connect()
            worker.start()
            await worker.wait_polling(client, task_queue)
            async with (
                served(create_app(settings, temporal=client), settings) as base,
                httpx.AsyncClient(base_url=base, timeout=30) as http,
            ):
                sessions = make_session_factory(engine)
                admin = settings.admin_token or ""
                stack = Stack(http, admin, sessions, "sqlite", client, task_queue)
                example = await new_example(stack)
                await signed_off_and_billed(example, worker)
                worker.stop(signal.SIGTERM)
                assert worker.process is not None and worker.process.returncode == 0, log_tail(
                    worker.log
                )
                yield Traced(example, receiver, worker)
        finally:
            worker.stop(signal.SIGTERM)
            temporal.stop(signal.SIGTERM)
            engine.dispose()
            api_tracing = telemetry.tracing("tollgate-api")
            if api_tracing is not None:
                api_tracing.shutdown()
            telemetry.tracing.cache_clear()


async def signed_off_and_billed(example: Example, worker: WorkerProcess) -> None:
    response = await example.trigger("phase-1")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    try:
        await example.wait_for_stage(run_id, "awaiting_approval")
        for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
            decided = await example.decide(run_id, role, person)
            assert decided.status_code == 202, decided.text
        await example.wait_for_stage(run_id, "billed")
    except AssertionError as failed:
        raise AssertionError(f"{failed}\nworker log:\n{log_tail(worker.log)}") from None


async def spans_until(receiver: Receiver, found: Any, patience: float = 20) -> list[Span]:
    """The received spans once ``found(spans)`` holds (the exporters send in batches)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not found(spans := receiver.received()):
        if loop.time() > deadline:
            names = sorted({(s.service, s.name) for s in spans})
            raise AssertionError(f"not received in {patience} s; received: {names}")
        await asyncio.sleep(0.1)
    return spans


def request_spans(spans: list[Span], route: str) -> list[Span]:
    return [
        s
        for s in spans
        if s.kind == SpanProto.SPAN_KIND_SERVER and s.attributes.get("http.route") == route
    ]


async def test_one_trace_goes_from_the_trigger_request_through_its_workflow_to_its_activities(
    traced: Traced,
):
    def complete(spans: list[Span]) -> bool:
        triggers = request_spans(spans, TRIGGER_ROUTE)
        return bool(triggers) and "CompleteWorkflow:MilestoneRun" in {
            s.name for s in spans if s.trace_id == triggers[0].trace_id
        }

    spans = await spans_until(traced.receiver, complete)

    (trigger,) = request_spans(spans, TRIGGER_ROUTE)
    assert (trigger.name, trigger.service) == (f"POST {TRIGGER_ROUTE}", "tollgate-api")
    trace = [s for s in spans if s.trace_id == trigger.trace_id]
    named = {s.name: s for s in trace}
    # The API process starts the workflow within the request; the worker process runs it and
    # its activities under that start (the workflow's spans are all children of its start).
    start = named["StartWorkflow:MilestoneRun"]
    assert (start.service, start.parent_id) == ("tollgate-api", trigger.span_id)
    run = named["RunWorkflow:MilestoneRun"]
    assert (run.service, run.parent_id) == ("tollgate-worker", start.span_id)
    for activity in ("open_run", "record_decision", "post_billing"):
        scheduled = named[f"StartActivity:{activity}"]
        ran = named[f"RunActivity:{activity}"]
        assert (scheduled.service, scheduled.parent_id) == ("tollgate-worker", start.span_id)
        assert (ran.service, ran.parent_id) == ("tollgate-worker", scheduled.span_id)
        assert ran.attributes["temporalWorkflowID"] == run.attributes["temporalWorkflowID"]
    assert named["CompleteWorkflow:MilestoneRun"].parent_id == start.span_id
    assert traced.receiver.refused == []


async def test_each_decision_is_traced_from_its_request_and_linked_from_the_runs_update_handler(
    traced: Traced,
):
    def complete(spans: list[Span]) -> bool:
        return len(request_spans(spans, DECISION_ROUTE)) == 2 and (
            sum(s.name == "HandleUpdate:decide" for s in spans) == 2
        )

    spans = await spans_until(traced.receiver, complete)

    decisions = request_spans(spans, DECISION_ROUTE)
    (trigger,) = request_spans(spans, TRIGGER_ROUTE)
    handled = [s for s in spans if s.name == "HandleUpdate:decide"]
    assert {s.trace_id for s in handled} == {trigger.trace_id}
    assert len({d.trace_id for d in decisions}) == 2  # one trace per request
    links = {link for s in handled for link in s.links}
    for decision in decisions:
        (update,) = [s for s in spans if s.parent_id == decision.span_id]
        assert (update.name, update.service) == ("StartWorkflowUpdate:decide", "tollgate-api")
        assert (update.trace_id, update.span_id) in links


def worker_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    lines = worker.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_the_worker_logs_a_json_line_as_each_activity_starts_and_ends_with_its_run(
    traced: Traced,
):
    example = traced.example
    engagement_id = example.engagement["id"]
    steps = [line for line in worker_lines(traced.worker) if line["logger"] == "tollgate.worker"]
    run_id = next(s["run_id"] for s in steps if s["activity"] == "open_run")
    ran = [s for s in steps if s.get("run_id") == run_id]

    started = [s for s in ran if s["event"] == "activity started"]
    ended = [s for s in ran if s["event"] == "activity ended"]
    assert [s["activity"] for s in started] == [s["activity"] for s in ended]
    assert {"open_run", "record_decision", "post_billing"} <= {s["activity"] for s in ended}
    for line in ran:
        assert line["workflow_id"] == run_id == line["run_id"]
        assert line["engagement_id"] == engagement_id
        assert line["attempt"] == 1
        assert line["level"] == "info"
    for line in ended:
        assert line["outcome"] == "ok"
        assert isinstance(line["duration_ms"], int) and line["duration_ms"] >= 0
    assert all(s["workflow_type"] == "MilestoneRun" for s in started)
    assert run_id.startswith(f"milestone:{engagement_id}:phase-1:")
