"""Fixtures for tests/api and tests/e2e: the whole stack over real HTTP (uvicorn serving
create_app(), a worker, the Temporal dev server, a migrated database), on SQLite and PostgreSQL."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.example import SIGNOFF_PDF, platform_migration
from config import Settings
from db.models import Run
from db.session import make_engine, make_session_factory
from tests.conftest import database
from tests.serving import served
from worker import build_worker


@dataclass
class Stack:
    http: httpx.AsyncClient
    admin_token: str
    sessions: sessionmaker[Session]
    backend: str
    temporal: Client
    task_queue: str
    link_secret: str = ""

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    async def post(
        self, path: str, body: Any, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**self.auth(token), **kw.pop("headers", {})}, **kw
        )

    async def get(self, path: str, token: str | None = None) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(token))

    async def principal(self, name: str) -> dict[str, str]:
        response = await self.post("/v1/principals", {"name": name, "email": f"{name}@example.com"})
        assert response.status_code == 201, response.text
        return response.json()


@dataclass
class Example:
    """The brief's platform-migration engagement, created through the API."""

    stack: Stack
    people: dict[str, dict[str, str]]
    customer: dict[str, Any]
    engagement: dict[str, Any]
    keys: list[str] = field(default_factory=list)

    def milestone(self, key: str) -> str:
        return next(m["id"] for m in self.engagement["milestones"] if m["key"] == key)

    def token(self, person: str) -> str:
        return self.people[person]["token"]

    async def trigger(
        self, key: str, body: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> httpx.Response:
        idem = idempotency_key or f"{key}-{uuid.uuid4()}"
        self.keys.append(idem)
        return await self.stack.post(
            f"/v1/milestones/{self.milestone(key)}/triggers",
            body or {"source": "test"},
            headers={"Idempotency-Key": idem},
        )

    async def decide(
        self,
        run_id: str,
        role: str,
        person: str,
        decision: str = "approve",
        comment: str = "",
        evidence_ids: list[str] | None = None,
    ) -> httpx.Response:
        body = {
            "role": role,
            "decision": decision,
            "comment": comment,
            "evidence_ids": evidence_ids or [],
        }
        return await self.stack.post(f"/v1/runs/{run_id}/decisions", body, self.token(person))

    async def awaiting_change_order(self, changes: dict[str, Any], reason: str) -> dict[str, Any]:
        """A change order proposed through the API, once its sign-off awaits approval: in the
        workflow, and in the books (an activity records the stage after the workflow takes it)."""
        path = f"/v1/engagements/{self.engagement['id']}/change-orders"
        proposed = await self.stack.post(path, {"reason": reason, "changes": changes})
        assert proposed.status_code == 202, proposed.text
        run_id = proposed.json()["run_id"]
        await self.wait_for_stage(run_id, "awaiting_approval")
        for _ in range(300):
            with self.stack.sessions() as session:
                if session.get_one(Run, run_id).stage == "awaiting_approval":
                    return proposed.json()
            await asyncio.sleep(0.1)
        raise AssertionError(f"the books never showed {run_id} awaiting approval")

    async def run(self, run_id: str) -> dict[str, Any]:
        response = await self.stack.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_for_stage(self, run_id: str, *stages: str) -> dict[str, Any]:
        for _ in range(300):
            status = await self.run(run_id)
            if status["stage"] in stages:
                return status
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {run_id} never reached {stages}; it is {status['stage']}")

    async def upload(self, content: bytes = SIGNOFF_PDF, name: str = "signoff.pdf") -> dict:
        response = await self.stack.http.post(
            "/v1/evidence",
            headers=self.stack.auth(),
            files={"file": (name, content, "application/pdf")},
            data={"description": "Phase 1 sign-off"},
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def refresh(self) -> dict[str, Any]:
        response = await self.stack.get(f"/v1/engagements/{self.engagement['id']}")
        assert response.status_code == 200, response.text
        self.engagement = response.json()
        return self.engagement


@asynccontextmanager
async def serve_stack(
    backend: str,
    env: WorkflowEnvironment,
    directory: Path,
    link_secret: str | None = None,
    trusted_proxies: str = "",
) -> AsyncIterator[Stack]:
    """Migrated database, uvicorn on a free port, and a worker on ``env``'s Temporal server."""
    with database(backend, directory) as url:
        settings = Settings(
            database_url=url,
            admin_token=secrets.token_urlsafe(24),
            task_queue=f"tollgate-{backend}-{uuid.uuid4()}",
            evidence_max_bytes=64 * 1024,
            link_secret=secrets.token_urlsafe(32) if link_secret is None else link_secret,
            trusted_proxies=trusted_proxies,
            # The test process serves the API, the worker and the test on one loop of a busy
            # 2-core machine: a run may take longer than production's 10 s to answer.
            update_patience_seconds=30,
        )
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        app = create_app(settings, temporal=env.client)
        async with (
            served(app, settings) as base,
            build_worker(env.client, sessions, settings.task_queue),
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            yield Stack(
                http,
                settings.admin_token or "",
                sessions,
                backend,
                env.client,
                settings.task_queue,
                settings.link_secret,
            )
        engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def private_webhook_targets() -> Iterator[None]:
    """The tests' receivers listen on 127.0.0.1, so the test stacks allow private webhook
    targets — through the environment, which workers built without settings read too. Tests
    of the guard turn it off in their own Settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_WEBHOOK_ALLOW_PRIVATE", "true")
        yield


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    backend: str = request.param
    async with serve_stack(backend, dev_server, tmp_path_factory.mktemp(backend)) as served:
        yield served


@pytest.fixture
async def example(stack: Stack) -> Example:
    return await new_example(stack)


async def new_example(stack: Stack) -> Example:
    """The brief's engagement with its five people and customer, created through the API."""
    people = {
        name: await stack.principal(name)
        for name in ("lead", "client", "lead_backup", "client_backup", "stranger")
    }
    response = await stack.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"})
    assert response.status_code == 201, response.text
    customer = response.json()
    body = platform_migration(
        customer["id"],
        people["lead"]["id"],
        people["client"]["id"],
        people["lead_backup"]["id"],
        people["client_backup"]["id"],
    )
    response = await stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())
