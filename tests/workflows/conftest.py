"""A worker on the time-skipping server with the real activities on a fresh SQLite database.

Setup data goes through the same functions the HTTP routes call, without HTTP in between.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Replayer

from api.example import platform_migration
from api.routes.customers import create_customer
from api.routes.engagements import create_engagement
from api.routes.principals import create_principal
from api.schemas import ChangeOrderIn, CustomerIn, EngagementIn, PrincipalIn, TriggerIn
from services.callers import Caller
from services.change_orders import propose, start_change_order
from services.runs import start_run
from services.triggers import accept_trigger
from tests.conftest import database_sessions
from worker import WORKFLOWS, build_worker
from workflows.change_order import ChangeOrderApproval
from workflows.contracts import DecisionSignal, RunStatus
from workflows.milestone_run import MilestoneRun

ADMIN = Caller("admin", "admin")
HISTORIES = Path(__file__).parent / "histories"
RECORD_TO = os.environ.get("TOLLGATE_RECORD_HISTORIES") == "1"


@dataclass
class Harness:
    env: WorkflowEnvironment
    sessions: sessionmaker[Session]
    task_queue: str
    people: dict[str, str]
    engagement: dict[str, Any]

    def milestone_id(self, key: str) -> str:
        return next(m["id"] for m in self.engagement["milestones"] if m["key"] == key)

    async def trigger(
        self, key: str, kpis: dict[str, str] | None = None, percent: str = "100"
    ) -> WorkflowHandle[MilestoneRun, RunStatus]:
        body = TriggerIn(source="test", completion_percent=percent, kpis=kpis or {})
        with self.sessions() as session:
            accepted = accept_trigger(
                session,
                ADMIN,
                self.milestone_id(key),
                f"{key}-{uuid.uuid4()}",
                body.model_dump(mode="json"),
            )
        # The handle from start_workflow skips time while its result is awaited.
        return await start_run(self.env.client, self.task_queue, accepted.run)

    async def propose(
        self, changes: dict[str, Any], reason: str = "Scope change agreed with the client"
    ) -> WorkflowHandle[ChangeOrderApproval, RunStatus]:
        """Propose a change order to the engagement, as POST .../change-orders does."""
        body = ChangeOrderIn.model_validate({"reason": reason, "changes": changes})
        with self.sessions() as session:
            proposal = propose(session, ADMIN, self.engagement["id"], body)
        return await start_change_order(self.env.client, self.task_queue, proposal.order)

    async def decide(
        self,
        handle: WorkflowHandle,
        role: str,
        person: str,
        decision: str = "approve",
        comment: str = "",
    ) -> None:
        signal = DecisionSignal(
            role=role, principal_id=self.people[person], decision=decision, comment=comment
        )
        await handle.signal(MilestoneRun.decide, signal)

    async def wait_for_stage(self, handle: WorkflowHandle, stage: str) -> RunStatus:
        for _ in range(200):
            status = await handle.query(MilestoneRun.status)
            if status.stage == stage:
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"run never reached {stage}; it is {status.stage}")

    async def finish(self, handle: WorkflowHandle) -> RunStatus:
        """The run's result, after checking its recorded history replays deterministically."""
        result = await handle.result()
        await self.replay(handle)
        return result

    async def replay(self, handle: WorkflowHandle) -> None:
        """Check a closed run's history replays; record it with TOLLGATE_RECORD_HISTORIES=1
        (new histories only: committed ones are never re-recorded)."""
        history = await handle.fetch_history()
        await Replayer(workflows=WORKFLOWS).replay_workflow(history)
        test = os.environ["PYTEST_CURRENT_TEST"].split("::")[-1].split(" ")[0].split("[")[0]
        kind = (await handle.describe()).workflow_type
        path = HISTORIES / (f"{test}.json" if kind == "MilestoneRun" else f"{test}.{kind}.json")
        if RECORD_TO and not path.exists():
            path.write_text(history.to_json())

    async def skip(self, duration: timedelta) -> None:
        await self.env.sleep(duration)

    def engage(self, **engagement_changes: Any) -> None:
        """Switch to a fresh engagement (its own people and customer) with these changes."""
        self.people, self.engagement = seed(self.sessions, **engagement_changes)


def seed(sessions: sessionmaker[Session], **engagement_changes: Any) -> tuple[dict, dict]:
    with sessions() as session:
        people = {
            name: create_principal(
                PrincipalIn(name=name, email=f"{name}@example.com"), session, ADMIN
            )["id"]
            for name in ("lead", "client", "lead_backup", "client_backup", "stranger")
        }
        customer = create_customer(CustomerIn(name="Acme Corp", currency="USD"), session, ADMIN)
        body = platform_migration(
            customer["id"],
            people["lead"],
            people["client"],
            people["lead_backup"],
            people["client_backup"],
        )
        body.update(engagement_changes)
        engagement = create_engagement(EngagementIn.model_validate(body), session, ADMIN)
    return people, engagement


@asynccontextmanager
async def harness_on(
    env: WorkflowEnvironment,
    backend: str,
    directory: Path,
    interceptors: Sequence[Interceptor] = (),
) -> AsyncIterator[Harness]:
    """The example engagement on a fresh ``backend`` database, and a worker on ``env``."""
    with database_sessions(backend, directory) as sessions:
        people, engagement = seed(sessions)
        task_queue = f"tollgate-test-{uuid.uuid4()}"
        async with build_worker(env.client, sessions, task_queue, interceptors=interceptors):
            yield Harness(env, sessions, task_queue, people, engagement)


@pytest.fixture(params=["sqlite", "postgresql"])
async def harness(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Harness]:
    """On each database: the activities' transactions, locks and upserts differ between them."""
    async with harness_on(time_skipping, request.param, tmp_path) as harness:
        yield harness
