"""Signed trigger URLs over real HTTP: a system with no token and no headers triggers one
milestone until the URL expires, is revoked or is used up; every use is audited with the caller's
address, and a refused trigger does not count as a use."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Run, Trigger
from services import trigger_urls
from tests.api.problems import assert_problem
from tests.conftest_stack import Example


def in_(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def create(example: Example, milestone: str = "phase-1", **fields: Any) -> dict[str, Any]:
    body = {"milestone": milestone, "expires_at": in_(timedelta(days=30)), **fields}
    response = await example.stack.post(
        f"/v1/engagements/{example.engagement['id']}/trigger-urls", body
    )
    assert response.status_code == 201, response.text
    return response.json()


async def call(example: Example, url: dict[str, Any] | str, **kw: Any) -> httpx.Response:
    """POST the URL as a system would: no Authorization, no Idempotency-Key unless given."""
    path = httpx.URL(url if isinstance(url, str) else url["url"]).path
    return await example.stack.http.post(path, **kw)


async def listed(example: Example) -> dict[str, dict[str, Any]]:
    response = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/trigger-urls")
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["items"]}


async def audit(example: Example, *kinds: str) -> list[dict[str, Any]]:
    response = await example.stack.get(
        f"/v1/engagements/{example.engagement['id']}/audit?limit=200"
    )
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["kind"] in kinds]


def triggers(example: Example, key: str = "phase-1") -> list[Trigger]:
    with example.stack.sessions() as session:
        query = select(Trigger).where(Trigger.milestone_id == example.milestone(key))
        return list(session.scalars(query))


def runs(example: Example, key: str = "phase-1") -> int:
    with example.stack.sessions() as session:
        query = (
            select(func.count()).select_from(Run).where(Run.milestone_id == example.milestone(key))
        )
        return session.scalar(query) or 0


async def reject(example: Example, run_id: str) -> None:
    await example.wait_for_stage(run_id, "awaiting_approval")
    response = await example.decide(run_id, "client_ap", "client", "reject", "Not yet")
    assert response.status_code == 202, response.text
    await example.wait_for_stage(run_id, "rejected")


async def test_a_url_posted_with_no_header_and_no_body_starts_a_run_awaiting_approval(
    example: Example,
):
    url = await create(example, max_uses=3)
    token = httpx.URL(url["url"]).path.removeprefix("/v1/t/")
    assert token and url["url"].startswith("http")
    assert (url["milestone_id"], url["max_uses"], url["uses"]) == (
        example.milestone("phase-1"),
        3,
        0,
    )

    response = await call(example, url)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.json()["milestone_id"] == example.milestone("phase-1")
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert status["pending_roles"]

    [trigger] = triggers(example)
    assert trigger.body["source"] == "signed-url"
    assert trigger.body["completion_percent"] == "100"
    assert trigger.actor == f"integration:{url['id']}"

    item = (await listed(example))[url["id"]]
    assert (item["uses"], item["status"]) == (1, "active")
    assert "url" not in item and token not in str(item)

    created, used = await audit(example, "trigger_url_created", "trigger_url_used")
    assert created["data"]["trigger_url_id"] == url["id"]
    assert used["actor"] == f"integration:{url['id']}"
    assert used["run_id"] == run_id
    assert used["data"] == {
        "trigger_url_id": url["id"],
        "address": "127.0.0.1",
        "use": 1,
        "max_uses": 3,
    }
    verified = await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    assert verified.json()["ok"] is True


async def test_the_body_is_the_trigger_json_read_whatever_its_content_type(example: Example):
    url = await create(example, "phase-2")
    body = b'{"completion_percent": "60", "external_ref": "JIRA-7", "kpis": {"uptime": "99.95"}}'
    response = await call(example, url, content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 202, response.text
    [trigger] = triggers(example, "phase-2")
    assert trigger.body == {
        "source": "signed-url",
        "completion_percent": "60",
        "kpis": {"uptime": "99.95"},
        "evidence_ids": [],
        "external_ref": "JIRA-7",
        "note": None,
    }


async def test_a_revoked_url_answers_410_at_once_and_the_refusal_is_audited(example: Example):
    url = await create(example)
    path = f"/v1/trigger-urls/{url['id']}"
    assert (await example.stack.http.delete(path, headers=example.stack.auth())).status_code == 204
    again = await example.stack.http.delete(path, headers=example.stack.auth())
    assert again.status_code == 204  # idempotent

    body = assert_problem(await call(example, url), 410)
    assert body["type"].endswith(":trigger-url-revoked")
    assert runs(example) == 0 and triggers(example) == []

    assert len(await audit(example, "trigger_url_revoked")) == 1
    [refused] = await audit(example, "trigger_url_refused")
    assert refused["data"] == {
        "trigger_url_id": url["id"],
        "address": "127.0.0.1",
        "reason": "revoked",
    }
    item = (await listed(example))[url["id"]]
    assert (item["status"], item["uses"]) == ("revoked", 0) and item["revoked_at"]


async def test_an_expired_url_answers_410(example: Example):
    url = await create(example, expires_at=in_(timedelta(seconds=1)))
    await asyncio.sleep(1.2)
    body = assert_problem(await call(example, url), 410)
    assert body["type"].endswith(":trigger-url-expired")
    assert runs(example) == 0
    [refused] = await audit(example, "trigger_url_refused")
    assert refused["data"]["reason"] == "expired"
    assert (await listed(example))[url["id"]]["status"] == "expired"


async def test_a_forged_token_is_a_404_that_does_not_say_what_is_wrong(example: Example):
    url = await create(example)
    token = httpx.URL(url["url"]).path.removeprefix("/v1/t/")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    forged = [
        flipped,
        trigger_urls.sign("not the server's secret", url["id"]),
        "garbage",
        url["id"],
    ]
    answers = []
    for candidate in forged:
        answers.append(assert_problem(await call(example, f"/v1/t/{candidate}"), 404))
    assert len({(a["type"], a["detail"]) for a in answers}) == 1
    assert runs(example) == 0
    assert await audit(example, "trigger_url_used", "trigger_url_refused") == []


async def test_a_url_used_max_uses_times_refuses_the_next_new_trigger(example: Example):
    url = await create(example, max_uses=1)
    first = await call(example, url)
    assert first.status_code == 202, first.text
    await reject(example, first.json()["run_id"])  # the milestone may be triggered again

    body = assert_problem(await call(example, url), 410)
    assert body["type"].endswith(":trigger-url-used-up")
    assert runs(example) == 1
    [refused] = await audit(example, "trigger_url_refused")
    assert refused["data"]["reason"] == "used-up"
    assert (await listed(example))[url["id"]]["status"] == "used-up"


async def test_a_call_refused_for_the_open_run_or_replayed_does_not_count_as_a_use(
    example: Example,
):
    url = await create(example, max_uses=2)
    first = await call(example, url, headers={"Idempotency-Key": "delivery-1"})
    assert first.status_code == 202, first.text

    open_run = assert_problem(await call(example, url), 409)
    assert open_run["type"].endswith(":open-run")
    replay = await call(example, url, params={"idempotency_key": "delivery-1"})
    assert replay.status_code == 200, replay.text
    assert replay.json()["run_id"] == first.json()["run_id"]
    assert (await listed(example))[url["id"]]["uses"] == 1
    assert len(await audit(example, "trigger_url_used")) == 1

    await reject(example, first.json()["run_id"])
    second = await call(example, url)
    assert second.status_code == 202, second.text
    assert (await listed(example))[url["id"]]["uses"] == 2


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b'{"completion_percent": 50}', 422, "completion_percent"),
        (b'{"kpis": {"uptime": 99.9}}', 422, "kpis"),
        (b'{"milestone": "phase-2"}', 422, "milestone"),
        (b'{"kpis": {"uptime": NaN}}', 422, "body"),
        (b"[1, 2]", 422, "body"),
        (b"not json", 400, None),
        (b'{"completion_percent": "50"}', 422, "completion_percent"),  # phase 1 is all or nothing
    ],
    ids=["number percent", "float kpi", "unknown field", "NaN", "array", "not json", "partial"],
)
async def test_a_bad_body_is_refused_and_not_counted_as_a_use(
    example: Example, content: bytes, status: int, field: str | None
):
    url = await create(example, max_uses=1)
    headers = {"Content-Type": "application/json"}
    assert_problem(await call(example, url, content=content, headers=headers), status, field)
    assert runs(example) == 0 and triggers(example) == []
    assert (await listed(example))[url["id"]]["uses"] == 0
    assert await audit(example, "trigger_url_used") == []
    assert (await call(example, url)).status_code == 202  # the one use is still there


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_an_unusable_idempotency_key_is_refused(example: Example, key: str):
    url = await create(example)
    assert_problem(await call(example, url, headers={"Idempotency-Key": key}), 400)
    assert (await listed(example))[url["id"]]["uses"] == 0


async def test_concurrent_calls_never_pass_max_uses(example: Example):
    url = await create(example, max_uses=1)
    answers = await asyncio.gather(*(call(example, url) for _ in range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(202) == 1 and set(codes) <= {202, 409, 410}, codes
    assert runs(example) == 1
    assert (await listed(example))[url["id"]]["uses"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": in_(timedelta(days=400))}, "expires_at"),
        ({"expires_at": 1900000000}, "expires_at"),
        ({"max_uses": 0}, "max_uses"),
        ({"milestone": "phase-9"}, "milestone"),
    ],
    ids=["past", "beyond a year", "epoch number", "zero uses", "unknown milestone"],
)
async def test_a_url_that_could_not_work_is_not_issued(
    example: Example, fields: dict[str, Any], field: str
):
    body = {"milestone": "phase-1", "expires_at": in_(timedelta(days=1)), **fields}
    response = await example.stack.post(
        f"/v1/engagements/{example.engagement['id']}/trigger-urls", body
    )
    assert_problem(response, 422, field)
    assert await listed(example) == {}
    assert await audit(example, "trigger_url_created") == []


async def test_a_url_is_issued_for_a_milestone_named_by_id_and_only_by_the_admin(
    example: Example,
):
    url = await create(example, example.milestone("phase-3"))
    assert url["milestone_id"] == example.milestone("phase-3")
    path = f"/v1/engagements/{example.engagement['id']}/trigger-urls"
    body = {"milestone": "phase-1", "expires_at": in_(timedelta(days=1))}
    assert_problem(await example.stack.post(path, body, example.token("lead")), 403)
    assert_problem(await example.stack.get(path, example.token("lead")), 403)
    revoke = f"/v1/trigger-urls/{url['id']}"
    lead = example.stack.auth(example.token("lead"))
    assert_problem(await example.stack.http.delete(revoke, headers=lead), 403)
    missing = "/v1/trigger-urls/tu_unknown"
    assert_problem(await example.stack.http.delete(missing, headers=example.stack.auth()), 404)
    assert_problem(await example.stack.http.post(path, json=body), 401)
