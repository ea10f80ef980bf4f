"""The edges of issue 7 (reproduction 8), over real HTTP: request bodies are bounded in size and
depth and refuse NaN / Infinity before anything is stored; a database or Temporal that cannot be
reached is a 503 problem with Retry-After, never a 500, and the API starts without Temporal;
absolute links come from the configured public URL, never the Host header; clawback credit notes
are numbered in the configured issuer's series."""

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from activities.clawback import ClawbackActivities
from activities.documents import finalize_invoice
from api.app import create_app
from api.example import platform_migration
from cli import start_temporal
from config import Settings
from db.models import CreditNote, Customer, InvoiceLine
from db.session import make_engine, make_session_factory
from tests.activities.test_billing_once import (
    bill,
    engagement,
    trigger,
)
from tests.api.problems import assert_problem
from tests.api.test_bonus_and_success_fees import LAUNCH_BONUS
from tests.conftest import database
from tests.conftest_stack import Example, Stack
from tests.serving import served
from workflows.watch_contracts import ClawBack, KpiReportSignal, WatchInput

MIB = 1024 * 1024
AT = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def customers(stack: Stack) -> int:
    with stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


async def post_json(stack: Stack, path: str, content: Any) -> httpx.Response:
    headers = {**stack.auth(), "Content-Type": "application/json"}
    return await stack.http.post(path, content=content, headers=headers)


def nested(depth: int) -> str:
    return (
        '{"name": "Acme", "currency": "USD", "metadata": '
        + '{"a": ' * depth
        + "1"
        + "}" * (depth + 1)
    )


# --- size, depth and NaN ---


async def test_a_json_body_over_one_mebibyte_is_refused_with_413_and_nothing_is_stored(
    stack: Stack,
):
    before = customers(stack)
    body = {"name": "Acme", "currency": "USD", "metadata": {"blob": "x" * MIB}}

    response = await stack.post("/v1/customers", body)

    assert "1048576-byte" in assert_problem(response, 413)["detail"]
    assert customers(stack) == before


async def test_a_streamed_body_without_content_length_is_counted_and_refused_past_the_limit(
    stack: Stack,
):
    before = customers(stack)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "Acme", "currency": "USD", "metadata": {"blob": "'
        for _ in range(20):
            yield b"x" * (64 * 1024)
        yield b'"}}'

    response = await post_json(stack, "/v1/customers", chunks())

    assert_problem(response, 413)
    assert customers(stack) == before


async def test_an_evidence_upload_keeps_its_own_limit(stack: Stack):
    """The stack's evidence limit is 64 KiB: just over it the route answers, far over it the
    body limit does; both are 413 problems."""
    for size in (80 * 1024, 512 * 1024):
        response = await stack.http.post(
            "/v1/evidence",
            headers=stack.auth(),
            files={"file": ("big.pdf", b"x" * size, "application/pdf")},
        )
        assert_problem(response, 413)


@pytest.mark.parametrize("depth", [33, 400])
async def test_metadata_nested_too_deep_is_refused_and_nothing_is_stored(stack: Stack, depth: int):
    before = customers(stack)

    response = await post_json(stack, "/v1/customers", nested(depth))

    assert "nested deeper than 32" in assert_problem(response, 422, "body")["detail"]
    assert customers(stack) == before


async def test_metadata_nested_within_the_bound_is_stored_and_read_back(stack: Stack):
    response = await post_json(stack, "/v1/customers", nested(30))

    assert response.status_code == 201, response.text
    again = await stack.get(f"/v1/customers/{response.json()['id']}")
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_refused_anywhere_in_a_body(stack: Stack, constant: str):
    before = customers(stack)
    body = f'{{"name": "Acme", "currency": "USD", "metadata": {{"ratio": {constant}}}}}'

    response = await post_json(stack, "/v1/customers", body)

    assert constant.lstrip("-") in assert_problem(response, 422, "body")["detail"]
    assert customers(stack) == before


async def test_malformed_json_is_still_a_400(stack: Stack):
    assert_problem(await post_json(stack, "/v1/customers", b'{"name": '), 400)


# --- links ---


async def test_status_urls_come_from_the_public_url_not_the_host_header(example: Example):
    path = f"/v1/engagements/{example.engagement['id']}/change-orders"
    changes = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}
    headers = {**example.stack.auth(), "Host": "attacker.example"}

    response = await example.stack.http.post(
        path, json={"reason": "More scope", "changes": changes}, headers=headers
    )

    assert response.status_code == 202, response.text
    proposed = response.json()
    public = Settings().public_url  # the stack sets none: http://{api_host}:{api_port}
    assert proposed["status_url"] == f"{public}/v1/runs/{proposed['run_id']}"
    assert proposed["change_order_url"] == f"{public}/v1/change-orders/{proposed['id']}"


def test_the_public_url_defaults_to_the_api_address_and_can_be_configured():
    assert Settings(api_host="api.local", api_port=9000).public_url == "http://api.local:9000"
    configured = Settings(public_url="https://billing.example.com/")
    assert configured.public_url == "https://billing.example.com"


# --- the database or Temporal out of reach ---


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of create_app(settings) on uvicorn, with no Temporal client handed in."""
    async with (
        served(create_app(settings), settings) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        yield http


def settings_for(database_url: str, **changes: Any) -> Settings:
    defaults = {
        "admin_token": secrets.token_urlsafe(16),
        "temporal_address": f"127.0.0.1:{closed_port()}",
    }
    return Settings(database_url=database_url, **{**defaults, **changes})


async def test_postgresql_out_of_reach_is_a_503_with_retry_after_on_every_endpoint():
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/tollgate"
    settings = settings_for(url)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with api_client(settings) as http:
        created = await http.post(
            "/v1/customers", json={"name": "Acme", "currency": "USD"}, headers=admin
        )
        read = await http.get("/v1/customers/cus_x", headers={"Authorization": "Bearer p"})

    for response in (created, read):
        assert_problem(response, 503)
        assert response.headers["Retry-After"].isdigit()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with database("sqlite", tmp_path) as url:
        yield url


async def test_the_api_serves_without_temporal_and_connects_once_it_is_up(
    sqlite_url: str, tmp_path: Path
):
    temporal_port = closed_port()
    settings = settings_for(
        sqlite_url,
        temporal_address=f"127.0.0.1:{temporal_port}",
        dev_temporal_port=temporal_port,
        dev_ui_port=closed_port(),
        evidence_max_bytes=2 * MIB,
    )
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with api_client(settings) as http:
        health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {
            "status": "unavailable",
            "database": "ok",
            "temporal": "unreachable",
        }
        customer = await http.post(
            "/v1/customers", json={"name": "A", "currency": "USD"}, headers=admin
        )
        assert customer.status_code == 201, customer.text
        upload = await http.post(  # over the JSON limit, within the evidence limit
            "/v1/evidence",
            headers=admin,
            files={"file": ("a.pdf", b"x" * (MIB + 1), "application/pdf")},
        )
        assert upload.status_code == 201, upload.text
        engagement_id = await example_engagement(http, admin, customer.json()["id"])
        waive = [{"milestone": f"phase-{n}", "reason": "Descoped"} for n in (1, 2, 3)]
        closeout = await http.post(
            f"/v1/engagements/{engagement_id}/closeout", json={"waive": waive}, headers=admin
        )
        assert_problem(closeout, 503)
        after = await http.get(f"/v1/engagements/{engagement_id}", headers=admin)
        assert after.json()["status"] == "active"  # the close-out was withdrawn, not stuck

        temporal = start_temporal(settings, tmp_path)
        try:
            for _ in range(300):
                health = await http.get("/healthz")
                if health.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
        finally:
            temporal.terminate()
            temporal.wait(timeout=30)


async def example_engagement(http: httpx.AsyncClient, admin: dict[str, str], customer: str) -> str:
    people = []
    for name in ("lead", "client", "lead_backup", "client_backup"):
        body = {"name": name, "email": f"{name}@example.com"}
        people.append((await http.post("/v1/principals", json=body, headers=admin)).json()["id"])
    created = await http.post(
        "/v1/engagements", json=platform_migration(customer, *people), headers=admin
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_tollgate_api_starts_and_stays_up_while_temporal_is_down(sqlite_url: str, tmp_path: Path):
    port = closed_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
        "TOLLGATE_DATABASE_URL": sqlite_url,
        "TOLLGATE_ADMIN_TOKEN": "tga_test",
        "TOLLGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}",
        "TOLLGATE_API_PORT": str(port),
    }
    tollgate = Path(sys.executable).with_name("tollgate")
    proc = subprocess.Popen([str(tollgate), "api"], cwd=tmp_path, env=env)
    try:
        health = None
        for _ in range(200):
            assert proc.poll() is None, "tollgate api exited"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 503
        assert health.json()["temporal"] == "unreachable"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- clawback credit notes ---


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database(request.param, tmp_path) as url:
        engine = make_engine(url)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


def test_a_clawback_credit_note_is_numbered_with_the_configured_issuer_prefix(
    sessions: sessionmaker[Session],
):
    created = engagement(sessions, [dict(LAUNCH_BONUS)])
    bonus = created["milestones"][0]
    run = trigger(sessions, bonus["id"])
    billed = bill(sessions, run)
    with sessions.begin() as session:
        finalize_invoice(session, billed.invoice_id, issuer_prefix="ACME", actor="admin", at=AT)
    watch = WatchInput(
        watch_id=f"watch-{run.run_id}",
        engagement_id=run.engagement_id,
        customer_id=run.customer_id,
        milestone_id=run.milestone_id,
        milestone_key=run.milestone_key,
        milestone_name=run.milestone_name,
        bonus_run_id=run.run_id,
        billed_minor=billed.amounts.gross_minor,
        currency=run.currency,
        clawback=LAUNCH_BONUS["clawback"],
        calendar={},
        billed_at=AT.isoformat(),
    )
    report = KpiReportSignal("kpi_x", {"error_rate_pct": "0.9"}, AT.isoformat())

    clawed = ClawbackActivities(sessions, issuer_prefix="ACME").claw_back(
        ClawBack(watch, report, "error_rate_pct 0.9 > 0.5", AT.isoformat())
    )

    with sessions() as session:
        note = session.get_one(CreditNote, clawed.credit_note_id)
        numbers = session.scalars(select(CreditNote.number)).all()
        assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 1
    assert note.number == f"ACME-CN-{AT.year}-000001"
    assert numbers == [note.number]
