"""Every refusal reaches the client's caller as a ``ProblemError`` carrying the API's problem
details: what went wrong, for which fields, and when to try again."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.api.test_edges import api_client, closed_port, settings_for
from tests.conftest_stack import Example
from tests.serving import served
from tollgate_client import AsyncTollgate, ProblemError


async def test_an_unknown_run_is_a_404_problem_naming_it(tollgate: AsyncTollgate):
    with pytest.raises(ProblemError) as refused:
        await tollgate.get_run("milestone:eng_nope:phase-1:0123456789ab")

    error = refused.value
    assert (error.status, error.type) == (404, "urn:tollgate:problem:not-found")
    assert error.title == "Run not found"
    assert "milestone:eng_nope:phase-1:0123456789ab" in error.detail
    assert error.errors == [] and error.retry_after is None
    assert str(error).startswith("404 Run not found: ")


async def test_a_refused_body_is_a_422_naming_each_field_refused(tollgate: AsyncTollgate):
    with pytest.raises(ProblemError) as refused:
        await tollgate.create_customer("", "dollars")

    error = refused.value
    assert (error.status, error.type) == (422, "urn:tollgate:problem:validation-error")
    assert {e.field for e in error.errors} == {"name", "currency"}
    assert all(e.message for e in error.errors)


async def test_a_second_trigger_while_the_first_run_is_open_is_a_409_and_a_replay_is_not(
    example: Example, tollgate: AsyncTollgate
):
    phase1, key = example.milestone("phase-1"), f"phase-1-{uuid.uuid4()}"
    first = await tollgate.trigger(phase1, idempotency_key=key, source="ci")

    replayed = await tollgate.trigger(phase1, idempotency_key=key, source="ci")
    with pytest.raises(ProblemError) as refused:
        await tollgate.trigger(phase1, idempotency_key=f"other-{uuid.uuid4()}", source="ci")

    assert replayed.run_id == first.run_id
    assert (refused.value.status, refused.value.type) == (409, "urn:tollgate:problem:open-run")
    assert first.run_id in refused.value.detail


async def test_a_wrong_token_is_a_401_problem(tollgate: AsyncTollgate):
    with pytest.raises(ProblemError) as refused:
        await tollgate.with_token("not-a-token").list_runs()

    assert refused.value.status == 401


async def test_an_unreachable_database_is_a_503_that_says_when_to_retry():
    settings = settings_for(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/tollgate")
    async with api_client(settings) as http:
        tollgate = AsyncTollgate(str(http.base_url), settings.admin_token, http=http)
        with pytest.raises(ProblemError) as refused:
            await tollgate.create_customer("Acme Corp", "USD")

    assert refused.value.status == 503
    assert refused.value.retry_after is not None and refused.value.retry_after > 0


@asynccontextmanager
async def bad_gateway() -> AsyncIterator[str]:
    """A proxy in front of the API that fails in plain text, as proxies do."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 502, "headers": headers})
        await send({"type": "http.response.body", "body": b"upstream connect error"})

    async with served(app) as base:
        yield base


async def test_an_error_that_is_not_problem_details_still_raises_with_its_status_and_words():
    async with bad_gateway() as url, AsyncTollgate(url, "token") as tollgate:
        with pytest.raises(ProblemError) as refused:
            await tollgate.get_run("run_x")

    assert (refused.value.status, refused.value.title) == (502, "Bad Gateway")
    assert refused.value.detail == "upstream connect error"
