"""How the API is served: a connection a pooled client keeps is not closed under it."""

import asyncio

import httpx
import uvicorn
from fastapi import FastAPI, Request

from api.serving import server_config
from config import Settings


async def test_the_api_keeps_an_idle_connection_open_longer_than_a_pooled_client_keeps_it():
    """At uvicorn's default (5 s, httpx's own pool expiry) the server closes an idle connection
    just as such a client may send its next request on it: a trigger then fails with a dropped
    connection. Kept open longer, the client's next request arrives on the same connection."""
    app = FastAPI()

    @app.post("/ping")
    def ping(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    config = server_config(app, Settings(), "127.0.0.1", 0, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    limits = httpx.Limits(keepalive_expiry=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:
        first = (await http.post("/ping")).json()
        await asyncio.sleep(5.5)  # idle past uvicorn's default
        again = (await http.post("/ping")).json()
    server.should_exit = True
    await serving

    assert again["port"] == first["port"]  # the same connection, still open
