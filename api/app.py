"""create_app(): the FastAPI application, one Temporal client and one engine per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api import problems
from api.deps import refuse_nul_in_path
from api.routes import (
    audit,
    change_orders,
    closeout,
    credit_notes,
    customers,
    engagements,
    evidence,
    health,
    invoices,
    kpi_reports,
    principals,
    runs,
)
from config import Settings, get_settings
from db.session import make_engine, make_session_factory


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.session_factory = make_session_factory(engine)
        app.state.temporal = temporal or await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace
        )
        yield
        engine.dispose()

    app = FastAPI(
        title="Tollgate",
        version="1.0.0",
        summary="Outcome-based billing: milestone triggers, sign-off, retention, invoices.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_in_path)],
    )
    problems.install(app)
    routers = (
        principals,
        customers,
        engagements,
        closeout,
        change_orders,
        evidence,
        runs,
        kpi_reports,
        invoices,
        credit_notes,
        audit,
        health,
    )
    for module in routers:
        app.include_router(module.router)
    return app
