"""An ASGI app on uvicorn at a free 127.0.0.1 port, configured as production serves the API
(api.serving: keep-alive, forwarded headers), for tests that need real HTTP."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from api.serving import server_config
from config import Settings


@asynccontextmanager
async def served(app: Any, settings: Settings | None = None, port: int = 0) -> AsyncIterator[str]:
    """Yields the base URL while ``app`` serves; ``port`` 0 picks a free one. ``settings`` says
    whose forwarded headers count (none by default). Stops the server on the way out."""
    config = server_config(app, settings or Settings(), "127.0.0.1", port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
            raise AssertionError(f"uvicorn did not start on 127.0.0.1:{port}")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
