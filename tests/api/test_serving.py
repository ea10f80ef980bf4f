"""How the API is served: a connection a pooled client keeps is not closed under it."""

import asyncio

import httpx
from fastapi import FastAPI, Request

from tests.serving import served


async def test_the_api_keeps_an_idle_connection_open_longer_than_a_pooled_client_keeps_it():
    """At uvicorn's default (5 s, httpx's own pool expiry) the server closes an idle connection
    just as such a client may send its next request on it: a trigger then fails with a dropped
    connection. Kept open longer, the client's next request arrives on the same connection."""
    app = FastAPI()

    @app.post("/ping")
    def ping(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    limits = httpx.Limits(keepalive_expiry=10)  # served: uvicorn as api.serving configures it
    async with served(app) as base, httpx.AsyncClient(base_url=base, limits=limits) as http:
        first = (await http.post("/ping")).json()
        await asyncio.sleep(5.5)  # idle past uvicorn's default
        again = (await http.post("/ping")).json()

    assert again["port"] == first["port"]  # the same connection, still open
