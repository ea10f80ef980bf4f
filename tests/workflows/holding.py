"""A worker that holds one activity in flight until the test lets it go: to land a cancellation
or an Update while that activity runs, every time."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from tests.workflows.conftest import Harness, harness_on


@dataclass
class HoldActivity(Interceptor):
    """Holds every attempt of one activity until ``release`` is set; ``started`` says one is
    in flight."""

    name: str
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        hold = self

        class Held(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                if activity.info().activity_type == hold.name:
                    hold.started.set()
                    await hold.release.wait()
                return await super().execute_activity(input)

        return Held(next)


@asynccontextmanager
async def holding(
    name: str, db: str, env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Harness, HoldActivity]]:
    """A harness on ``db`` whose worker holds the activity ``name`` in flight."""
    hold = HoldActivity(name)
    async with harness_on(env, db, tmp_path, interceptors=[hold]) as harness:
        yield harness, hold
        hold.release.set()
