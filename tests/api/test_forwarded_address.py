"""Whose address a signed trigger URL's audit records: the TCP peer, unless the peer is a proxy
the settings name (``TOLLGATE_TRUSTED_PROXIES``); then the client it forwarded for. A header any
caller can set is never believed from anyone else."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from db.models import AuditEvent
from tests.conftest_stack import Example, new_example, serve_stack

FORWARDED = {"X-Forwarded-For": "203.0.113.9"}


@pytest.fixture(scope="module", params=["", "127.0.0.1"], ids=["no-proxy", "behind-a-proxy"])
async def example_behind(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Example, str]]:
    """An example whose API believes ``request.param``'s forwarded headers (none or loopback),
    and the address a use from it must be audited with."""
    proxies: str = request.param
    directory = tmp_path_factory.mktemp("forwarded")
    async with serve_stack("sqlite", dev_server, directory, trusted_proxies=proxies) as stack:
        yield await new_example(stack), FORWARDED["X-Forwarded-For"] if proxies else "127.0.0.1"


async def used_from(example: Example) -> str:
    """POST a fresh signed URL with a forwarded header; the address its use was audited with."""
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await example.stack.post(
        f"/v1/engagements/{example.engagement['id']}/trigger-urls",
        {"milestone": "phase-1", "expires_at": expires},
    )
    assert created.status_code == 201, created.text
    path = httpx.URL(created.json()["url"]).path
    response = await example.stack.http.post(path, headers=FORWARDED)
    assert response.status_code == 202, response.text
    with example.stack.sessions() as session:
        [data] = session.scalars(
            select(AuditEvent.data).where(
                AuditEvent.kind == "trigger_url_used",
                AuditEvent.run_id == response.json()["run_id"],
            )
        )
    return data["address"]


async def test_the_audit_records_the_peer_or_the_client_a_trusted_proxy_forwarded_for(
    example_behind: tuple[Example, str],
):
    example, expected = example_behind
    assert await used_from(example) == expected
