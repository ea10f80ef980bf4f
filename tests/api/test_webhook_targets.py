"""Registering a webhook endpoint on an API that does not allow private targets (the default):
a URL that is or resolves to a loopback, private or link-local address is a 422 naming the
field, and nothing is registered; a public address is accepted."""

import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from config import Settings
from db.models import WebhookEndpoint
from db.session import make_engine, make_session_factory
from tests.api.problems import assert_problem
from tests.conftest import database
from tests.serving import served


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http, self.settings = http, settings
        self.customer_id = ""

    async def register(self, url: str) -> httpx.Response:
        body = {"url": url, "events": ["run_billed"], "customer_id": self.customer_id}
        headers = {"Authorization": f"Bearer {self.settings.admin_token}"}
        return await self.http.post("/v1/webhook-endpoints", json=body, headers=headers)

    def endpoints(self) -> int:
        engine = make_engine(self.settings.database_url)
        try:
            with make_session_factory(engine)() as session:
                return session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The API alone on uvicorn (no Temporal needed to register endpoints), private targets
    refused even though the test stacks' environment allows them."""
    directory: Path = tmp_path_factory.mktemp("webhook-targets")
    with database("sqlite", directory) as url:
        settings = Settings(
            database_url=url,
            admin_token=secrets.token_urlsafe(16),
            temporal_address=f"127.0.0.1:{closed_port()}",
            webhook_allow_private=False,
        )
        async with (
            served(create_app(settings), settings) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            registering = Api(http, settings)
            customer = await http.post(
                "/v1/customers",
                json={"name": "Acme", "currency": "USD"},
                headers={"Authorization": f"Bearer {settings.admin_token}"},
            )
            assert customer.status_code == 201, customer.text
            registering.customer_id = customer.json()["id"]
            yield registering


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://localhost:9/x", "loopback"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "link-local"),
        ("https://10.0.0.7/hook", "private"),
        ("http://[::]/hook", "unspecified"),
    ],
)
async def test_a_url_reaching_inside_is_refused_at_registration_and_nothing_is_registered(
    api: Api, url: str, named: str
):
    before = api.endpoints()
    body = assert_problem(await api.register(url), 422, "url")
    [error] = [e for e in body["errors"] if e["field"] == "url"]
    assert named in error["message"] and "public addresses only" in error["message"]
    assert api.endpoints() == before


async def test_a_public_address_is_registered(api: Api):
    response = await api.register("https://93.184.216.34/hook")
    assert response.status_code == 201, response.text
    assert response.json()["url"] == "https://93.184.216.34/hook"
