"""Tracing is installed only when an OTLP endpoint is configured (tests/e2e/test_telemetry.py
follows the spans themselves)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

import telemetry
from api.app import create_app
from config import Settings
from db.session import make_engine, make_session_factory
from worker import build_worker


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OTEL_* variable set, and no tracing cached from before; cleared again afterwards."""
    for name in (*telemetry.ENDPOINT_VARIABLES, "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    telemetry.tracing.cache_clear()
    yield monkeypatch
    for service in ("tollgate-api", "tollgate-worker"):
        traced = telemetry.tracing(service)
        if traced is not None:
            traced.shutdown()
    telemetry.tracing.cache_clear()


def traced(client: Client) -> bool:
    return any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"])


async def test_without_an_endpoint_no_provider_middleware_or_interceptor_is_installed(
    otel_env: pytest.MonkeyPatch, dev_server: WorkflowEnvironment, tmp_path: Path
):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'tollgate.db'}", admin_token="t")
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        assert app.state.temporal is dev_server.client
    engine = make_engine(settings.database_url)
    worker = build_worker(dev_server.client, make_session_factory(engine), f"q-{uuid.uuid4()}")
    engine.dispose()

    assert telemetry.tracing("tollgate-api") is None
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert not traced(dev_server.client)
    assert worker.client is dev_server.client
    assert not any(isinstance(i, TracingInterceptor) for i in worker.config()["interceptors"])
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@pytest.mark.parametrize("variable", telemetry.ENDPOINT_VARIABLES)
async def test_with_an_endpoint_requests_and_both_clients_are_traced_sharing_a_connection(
    variable: str, otel_env: pytest.MonkeyPatch, dev_server: WorkflowEnvironment, tmp_path: Path
):
    otel_env.setenv(variable, "http://127.0.0.1:4318")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'tollgate.db'}", admin_token="t")
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        api_client: Client = app.state.temporal
    engine = make_engine(settings.database_url)
    worker = build_worker(dev_server.client, make_session_factory(engine), f"q-{uuid.uuid4()}")
    engine.dispose()

    assert app._is_instrumented_by_opentelemetry  # type: ignore[attr-defined]
    for client in (api_client, worker.client):
        assert traced(client)
        assert client.service_client is dev_server.client.service_client
    assert not traced(dev_server.client)  # the client handed in is left as it was
    api, work = telemetry.tracing("tollgate-api"), telemetry.tracing("tollgate-worker")
    assert api is not None and work is not None
    assert api.provider.resource.attributes[SERVICE_NAME] == "tollgate-api"
    assert work.provider.resource.attributes[SERVICE_NAME] == "tollgate-worker"
    assert work.client(worker.client) is worker.client  # never traced twice


def test_otel_service_name_names_the_service(otel_env: pytest.MonkeyPatch):
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_env.setenv("OTEL_SERVICE_NAME", "billing-prod")

    traced = telemetry.tracing("tollgate-api")

    assert traced is not None
    assert traced.provider.resource.attributes[SERVICE_NAME] == "billing-prod"
