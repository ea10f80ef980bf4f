"""The API's Prometheus metrics: its requests as they happen, the books read at scrape time.

Each app has its own registry (tests run several apps in one process). Requests are counted by
route template, never by raw path, so ids do not multiply the series. Runs, amounts and
notifications are read from the database when Prometheus scrapes, so they count every run
whoever ended it (the API, the worker, the reconciler) and survive restarts.
"""

import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.routes import metrics as metrics_route
from db.models import Engagement, Notification, Run
from domain.lifecycle import TERMINAL_STAGES, RunStage

UNMATCHED = "<unmatched>"  # every path no route serves, as one series


class RequestMetrics:
    """ASGI middleware: requests by method, route and status, and their latency."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "tollgate_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "tollgate_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before it answers
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


class BooksCollector(Collector):
    """Runs, billed amounts and notifications, counted in the database at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "tollgate_books_up", "1 when the database answered this scrape, 0 when it did not."
        )
        sessions: sessionmaker[Session] | None = getattr(self._app.state, "session_factory", None)
        if sessions is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            with sessions() as session:
                families = list(_books(session))
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _books(session: Session) -> Iterator[Metric]:
    by_stage = session.execute(
        select(Run.kind, Run.stage, func.count()).group_by(Run.kind, Run.stage)
    ).all()
    started = CounterMetricFamily(
        "tollgate_runs_started",
        "Runs recorded (a trigger, close-out or change order).",
        labels=["kind"],
    )
    ended = CounterMetricFamily(
        "tollgate_runs_ended",
        "Runs ended, by kind and final stage (billed, rejected, failed, cancelled, …).",
        labels=["kind", "stage"],
    )
    open_runs = GaugeMetricFamily(
        "tollgate_runs_open",
        "Runs not yet ended, by kind and current stage.",
        labels=["kind", "stage"],
    )
    totals: dict[str, int] = {}
    for kind, stage, count in by_stage:
        totals[kind] = totals.get(kind, 0) + count
        family = ended if stage in TERMINAL_STAGES else open_runs
        family.add_metric([kind, stage], count)
    for kind, count in sorted(totals.items()):
        started.add_metric([kind], count)
    yield from (started, ended, open_runs)

    billed = CounterMetricFamily(
        "tollgate_billed_minor",
        "Gross amount of billed runs, in minor units of the currency.",
        labels=["currency"],
    )
    amounts = session.execute(
        select(Engagement.currency, func.coalesce(func.sum(Run.gross_minor), 0))
        .join(Engagement, Engagement.id == Run.engagement_id)
        .where(Run.stage == RunStage.BILLED)
        .group_by(Engagement.currency)
    ).all()
    for currency, total in amounts:
        billed.add_metric([currency], int(total))
    yield billed

    notices = GaugeMetricFamily(
        "tollgate_notifications",
        "Notifications by channel and delivery status (pending, delivered, dead).",
        labels=["channel", "status"],
    )
    for channel, status, count in session.execute(
        select(Notification.channel, Notification.status, func.count()).group_by(
            Notification.channel, Notification.status
        )
    ):
        notices.add_metric([channel, status], count)
    yield notices


def instrument(app: FastAPI) -> None:
    """Count the app's requests and serve ``GET /metrics`` (admin token) from its own registry."""
    registry = CollectorRegistry()
    registry.register(BooksCollector(app))
    app.state.metrics_registry = registry
    app.add_middleware(RequestMetrics, registry=registry)
    app.include_router(metrics_route.router)
