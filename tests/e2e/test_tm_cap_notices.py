"""A time-and-materials cap told as it fills: closing a month that bills 80 % of the engagement's
not-to-exceed emails the operators and the client (a real SMTP server) and posts a signed webhook
(a real HTTP receiver), once; closing the next month, which reaches the cap, tells it once more."""

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from api.example import platform_migration
from tests.api.test_time_and_materials import close, entry
from tests.conftest_stack import Example, Stack
from tests.e2e.hooks import Receiver
from tests.e2e.mail import Inbox, smtp_inbox, text_part
from tests.e2e.mail_stack import serve_mail_stack
from tests.e2e.test_document_notices import about, all_delivered, posts, subject, subscribe

OPERATORS = "tm-ops@example.com"
TERMS = {
    "rate_card": [
        {"role": "senior", "rate_minor": 20_000},
        {"role": "junior", "rate_minor": 10_000},
    ],
    "not_to_exceed_minor": 1_000_000,
}


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as box:
        yield box


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
    inbox: Inbox,
) -> AsyncIterator[Stack]:
    backend: str = request.param
    directory = tmp_path_factory.mktemp(f"tm-cap-{backend}")
    async with serve_mail_stack(
        backend, dev_server, directory, inbox, operators_email=OPERATORS
    ) as served:
        yield served


async def capped(stack: Stack) -> Example:
    """The example's engagement with a 10,000.00 USD not-to-exceed on its time and materials."""
    people = {
        name: await stack.principal(f"{name}-{uuid.uuid4().hex[:6]}")
        for name in ("lead", "client", "lead_backup", "client_backup", "stranger")
    }
    customer = (await stack.post("/v1/customers", {"name": "Acme", "currency": "USD"})).json()
    body = platform_migration(
        customer["id"],
        *(people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")),
    )
    response = await stack.post("/v1/engagements", {**body, "time_and_materials": TERMS})
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


async def post_entries(example: Example, entries: list[dict]) -> None:
    path = f"/v1/engagements/{example.engagement['id']}/time-entries"
    response = await example.stack.post(path, {"entries": entries})
    assert response.status_code == 201, response.text
    assert all(r["status"] == "created" for r in response.json()["results"]), response.text


async def test_a_not_to_exceed_is_told_at_80_percent_and_when_reached_once_each(
    stack: Stack, inbox: Inbox, receiver: tuple[Receiver, str]
):
    hooks, base = receiver
    example = await capped(stack)
    eng = example.engagement["id"]
    cap_id = f"tm-cap:{eng}:not-to-exceed"
    events = ["tm_cap_80", "tm_cap_reached"]
    endpoint = await subscribe(example, hooks, base, events, engagement_id=eng)
    client = example.people["client"]["email"]

    # November: 8,500.00 of 10,000.00 billed, 85 %.
    november = [entry(f"n{i}", "pat", "senior", f"2025-11-0{i}", "8") for i in range(1, 6)]
    await post_entries(example, [*november, entry("n6", "sam", "junior", "2025-11-10", "5")])
    assert (await close(example, "2025-11"))["gross_minor"] == 850_000
    [row_80, *_] = await all_delivered(stack, cap_id, 3)  # operators, client_ap, the endpoint
    assert row_80["kind"] == "tm_cap_80"
    [post] = posts(hooks, endpoint, "tm_cap_80")
    assert {k: post["data"][k] for k in ("cap", "threshold_percent", "billed_minor")} == {
        "cap": "not_to_exceed",
        "threshold_percent": 80,
        "billed_minor": 850_000,
    }
    assert (post["data"]["cap_minor"], post["data"]["remaining_minor"]) == (1_000_000, 150_000)
    [ops] = await inbox.wait_for(about(OPERATORS, cap_id))
    [to_client] = await inbox.wait_for(about(client, cap_id))
    assert "not-to-exceed of 10,000.00 USD 80% reached" in subject(ops)
    assert "Left under the cap: 1,500.00 USD" in text_part(to_client)

    # December: 3,200.00 of work, 1,500.00 of it billed; the cap is reached.
    await post_entries(
        example, [entry(f"d{i}", "pat", "senior", f"2025-12-0{i}", "8") for i in (1, 2)]
    )
    assert (await close(example, "2025-12"))["gross_minor"] == 150_000
    rows = await all_delivered(stack, cap_id, 6)
    assert sorted(r["kind"] for r in rows) == ["tm_cap_80"] * 3 + ["tm_cap_reached"] * 3
    [reached] = posts(hooks, endpoint, "tm_cap_reached")
    assert (reached["data"]["threshold_percent"], reached["data"]["billed_minor"]) == (
        100,
        1_000_000,
    )
    assert len(posts(hooks, endpoint, "tm_cap_80")) == 1
    messages = await inbox.wait_for(about(OPERATORS, cap_id), count=2)
    assert len(messages) == 2 and "not-to-exceed of 10,000.00 USD reached" in subject(messages[1])
