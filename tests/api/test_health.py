"""GET /healthz on an API that shares its Temporal client with a worker, as `tollgate dev` and
the test stacks do, against a Temporal server that recycles its connections."""

import asyncio
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from db.session import make_engine, make_session_factory
from tests.conftest import database
from tests.serving import served
from worker import build_worker
from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
# Production's default is 5 minutes; a second makes every probe below meet a recycled connection.
RECYCLED_EVERY = ["--dynamic-config-value", 'frontend.keepAliveMaxConnectionAge="1s"']
RECYCLED_EVERY += ["--dynamic-config-value", 'frontend.keepAliveMaxConnectionAgeGrace="1s"']


async def test_the_health_check_stays_ok_when_temporal_recycles_the_clients_connection(
    tmp_path: Path,
):
    """Before, each probe after a recycle answered 503 (temporal: "error: RPCError")."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_extra_args=RECYCLED_EVERY,
        search_attributes=sa.ALL,
    )
    with database("sqlite", tmp_path) as url:
        settings = Settings(database_url=url, task_queue=f"health-{uuid.uuid4()}")
        engine = make_engine(url)
        worker = build_worker(env.client, make_session_factory(engine), settings.task_queue)
        app = create_app(settings, temporal=env.client)
        async with env, worker, served(app) as base, httpx.AsyncClient(base_url=base) as http:
            answers = []
            for _ in range(6):
                await asyncio.sleep(1.2)  # past the connection's age: the server recycles it
                answers.append((await http.get("/healthz")).json())
        engine.dispose()

    assert answers == [{"status": "ok", "database": "ok", "temporal": "ok"}] * 6
