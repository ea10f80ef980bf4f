"""Traces: OpenTelemetry spans over OTLP/HTTP, on only when an endpoint is configured.

Configured with the standard OpenTelemetry environment: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(the full URL, ``…/v1/traces``) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a collector's base URL, to
which ``/v1/traces`` is appended), ``OTEL_SERVICE_NAME`` (default ``tollgate-api`` /
``tollgate-worker``), and whatever else the exporter reads (``OTEL_EXPORTER_OTLP_HEADERS``,
``…_TIMEOUT``, ``…_COMPRESSION``). Without an endpoint nothing is built: no tracer provider, no
HTTP middleware, no Temporal interceptor.

With one, the API traces each request (FastAPI instrumentation) and its Temporal client carries
the trace into the workflow and activities in headers (Temporal's ``TracingInterceptor``), so
one trace goes HTTP request → StartWorkflow / StartWorkflowUpdate → RunWorkflow / HandleUpdate →
StartActivity → RunActivity.
"""

import os
from functools import cache

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Scrapes and probes arrive every few seconds and say nothing about a run.
UNTRACED_URLS = "/metrics$,/healthz$"


class Tracing:
    """One tracer provider, its Temporal interceptor, and the ways to hook them in."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.interceptor = TracingInterceptor(provider.get_tracer("tollgate"))

    @classmethod
    def exporting(cls, service: str) -> "Tracing":
        """Spans batched to the configured OTLP/HTTP (protobuf) endpoint; the provider flushes
        and shuts down when the process exits."""
        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
        provider = TracerProvider(resource=Resource.create(named))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def client(self, client: Client) -> Client:
        """``client`` with the interceptor (sharing its connection), unless it has it already.
        A worker built on it gets the interceptor too."""
        if any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"]):
            return client
        config = client.config()
        config["interceptors"] = [*config["interceptors"], self.interceptor]
        return Client(**config)

    def instrument(self, app: FastAPI) -> None:
        """A server span per request, named by route template (``POST /v1/runs/{run_id}/…``)."""
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            meter_provider=NoOpMeterProvider(),  # metrics are Prometheus's (api/metrics.py)
            excluded_urls=UNTRACED_URLS,
            exclude_spans=["receive", "send"],
        )

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()


def configured() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


@cache
def tracing(service: str) -> Tracing | None:
    """The process's tracing for ``service`` (``tollgate-api``, ``tollgate-worker``) when an
    endpoint is configured, else None. One provider per service per process."""
    return Tracing.exporting(service) if configured() else None
