"""A real HTTP receiver for the notices' webhooks, verifying Standard Webhooks signatures."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.serving import served


class Receiver:
    """A real HTTP server that verifies Standard Webhooks signatures; paths fail on demand."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.failures_left: dict[str, int] = {}
        self.received: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hooks/{name}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> PlainTextResponse:
        name = request.path_params["name"]
        body = (await request.body()).decode()
        payload = Webhook(self.secrets[name]).verify(body, dict(request.headers))
        failing = self.failures_left.get(name, 0) > 0
        self.received.append(
            {
                "name": name,
                "id": request.headers["webhook-id"],
                "payload": payload,
                "ok": not failing,
            }
        )
        if failing:
            self.failures_left[name] -= 1
            return PlainTextResponse("try again later", status_code=503)
        return PlainTextResponse("ok")

    def of(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["name"] == name]


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    """A served ``Receiver`` and its base URL; an endpoint named ``n`` is ``{base}/n``."""
    hooks = Receiver()
    async with served(hooks.app) as base:
        yield hooks, f"{base}/hooks"
