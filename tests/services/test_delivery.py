"""Notices and their delivery, service by service, on both databases: written with the state
change or not at all, routed to the endpoints that asked for the event, each attempt recorded."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from db.models import Notification, NotificationAttempt, WebhookEndpoint, new_id
from services.delivery import deliver, deliver_all, sweep
from services.notices import Notice, NoticeKind, queue, recipients
from services.senders import DeliveryConfig
from tests.conftest_stack import Example, new_example, serve_stack
from workflows.delivery import delivery_workflow_id

CONFIG = replace(
    DeliveryConfig.from_settings(Settings()),
    operators_email="",
    backoff_seconds=2,
    backoff_max_seconds=10,
    max_attempts=5,
    timeout_seconds=2,
)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def notice(example: Example, kind: NoticeKind = NoticeKind.RUN_BILLED) -> Notice:
    return Notice(
        kind=kind,
        run_id=f"run-{new_id('test')}",
        run_kind="milestone",
        engagement_id=example.engagement["id"],
        milestone_id=example.milestone("phase-1"),
        headline="Phase 1 billed",
        amounts=[("Gross", 3_000_000)],
    )


def endpoint(example: Example, events: list[str], **owner: str) -> str:
    with example.stack.sessions.begin() as session:
        row = WebhookEndpoint(
            id=new_id("whe"),
            url=f"http://127.0.0.1:{closed_port()}/hook",
            events=events,
            secret="whsec_" + "a" * 32,
            **(owner or {"engagement_id": example.engagement["id"]}),
        )
        session.add(row)
        return row.id


def rows_of(example: Example, run_id: str) -> list[Notification]:
    with example.stack.sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.run_id == run_id)))


def test_back_off_doubles_after_each_failure_up_to_its_cap():
    assert [CONFIG.backoff(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_a_notice_exists_only_if_the_state_change_it_tells_about_committed(example: Example):
    about = notice(example)
    to = recipients({"client_ap": [example.people["client"]["id"]]})
    with pytest.raises(RuntimeError), example.stack.sessions.begin() as session:
        queue(session, about, to)
        raise RuntimeError("the state change failed")
    assert rows_of(example, about.run_id) == []

    with example.stack.sessions.begin() as session:
        first = queue(session, about, to)
    with example.stack.sessions.begin() as session:
        again = queue(session, about, to)  # a retried activity
    assert len(first) == 1 and again == []
    [row] = rows_of(example, about.run_id)
    assert (row.channel, row.address, row.status) == ("email", "client@example.com", "pending")
    assert "30,000.00" in row.body_text and "30,000.00" in row.body_html


def test_webhooks_go_to_active_endpoints_of_the_engagement_or_customer_that_asked_for_the_event(
    example: Example,
):
    for_engagement = endpoint(example, ["run_billed"])
    for_customer = endpoint(example, ["run_billed"], customer_id=example.customer["id"])
    other_event = endpoint(example, ["reminder"])
    inactive = endpoint(example, ["run_billed"])
    with example.stack.sessions.begin() as session:
        session.get_one(WebhookEndpoint, inactive).active = False
    about = notice(example)
    with example.stack.sessions.begin() as session:
        queue(session, about, [])

    hooked = {r.recipient_id for r in rows_of(example, about.run_id)}
    assert hooked == {for_engagement, for_customer}
    assert other_event not in hooked


async def test_an_unreachable_mail_server_is_a_failed_attempt_recorded_and_retried_later(
    example: Example,
):
    about = notice(example)
    with example.stack.sessions.begin() as session:
        [row_id] = queue(session, about, recipients({"r": [example.people["lead"]["id"]]}))

    attempted = await deliver(
        example.stack.sessions, row_id, replace(CONFIG, smtp_port=closed_port())
    )

    assert (attempted.status, attempted.attempts, attempted.retry_in_seconds) == ("pending", 1, 2)
    with example.stack.sessions() as session:
        row = session.get_one(Notification, row_id)
        [attempt] = session.scalars(
            select(NotificationAttempt).where(NotificationAttempt.notification_id == row_id)
        ).all()
        assert attempt.outcome == "failed" and attempt.error
        assert row.last_error == attempt.error and row.next_attempt_at > datetime.now(UTC)


class Refusing:
    """An SMTP server's handler that refuses one address and notes each message's connection."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.received: list[tuple[tuple[str, int], str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address == self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.extend((session.peer, to) for to in envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def refusing_client() -> Iterator[tuple[Refusing, int]]:
    handler = Refusing("client@example.com")
    controller = Controller(handler, hostname="127.0.0.1", port=closed_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


async def test_one_activitys_notices_share_one_smtp_connection_and_a_refusal_fails_alone(
    example: Example, refusing_client: tuple[Refusing, int]
):
    server, port = refusing_client
    hook = endpoint(example, ["run_billed"])
    about = notice(example)
    people = {r: [example.people[p]["id"]] for r, p in [("lead", "lead"), ("ap", "client")]}
    people["backup"] = [example.people["lead_backup"]["id"]]
    with example.stack.sessions.begin() as session:
        ids = queue(session, about, recipients(people))

    config = replace(CONFIG, smtp_port=port, webhook_allow_private=True)
    attempted = await deliver_all(example.stack.sessions, ids, config)

    rows = {r.address: r for r in rows_of(example, about.run_id) if r.recipient_id != hook}
    assert {a: r.status for a, r in rows.items()} == {
        "lead@example.com": "delivered",
        "lead_backup@example.com": "delivered",
        "client@example.com": "pending",  # refused: retried after its back-off
    }
    assert "mailbox unavailable" in (rows["client@example.com"].last_error or "")
    assert sorted(to for _, to in server.received) == [
        "lead@example.com",
        "lead_backup@example.com",
    ]
    assert len({peer for peer, _ in server.received}) == 1  # one connection for the batch
    [webhook] = [r for r in rows_of(example, about.run_id) if r.recipient_id == hook]
    assert (webhook.status, attempted[webhook.id].attempts) == ("pending", 1)
    assert "ConnectError" in (webhook.last_error or "")


async def test_an_operators_notice_without_an_operators_address_is_dead_at_once_saying_why(
    example: Example,
):
    about = notice(example, NoticeKind.RUN_FAILED)
    with example.stack.sessions.begin() as session:
        [row_id] = queue(session, about, [], operators=True)

    attempted = await deliver(example.stack.sessions, row_id, CONFIG)

    assert (attempted.status, attempted.attempts) == ("dead", 1)
    with example.stack.sessions() as session:
        assert "TOLLGATE_OPERATORS_EMAIL" in (
            session.get_one(Notification, row_id).last_error or ""
        )


@pytest.fixture
async def alone(
    request: pytest.FixtureRequest, dev_server: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Example]:
    """The example on a database of its own: the sweep takes the oldest pending rows first,
    and the shared stack holds hundreds that other tests wrote and never deliver."""
    async with serve_stack(request.param, dev_server, tmp_path) as stack:
        yield await new_example(stack)


@pytest.mark.parametrize("alone", ["sqlite", "postgresql"], indirect=True)
async def test_the_sweep_starts_the_delivery_nobody_started_and_the_attempt_is_recorded(
    alone: Example,
):
    example = alone
    endpoint(example, ["run_expired"])
    about = notice(example, NoticeKind.RUN_EXPIRED)
    with example.stack.sessions.begin() as session:
        [row_id] = queue(session, about, [])

    stack = example.stack
    swept = await sweep(stack.sessions, stack.temporal, stack.task_queue, timedelta(0))

    assert row_id in swept
    handle = example.stack.temporal.get_workflow_handle(
        delivery_workflow_id(stack.task_queue, row_id)
    )
    assert (await handle.describe()).id == f"notify-{stack.task_queue}-{row_id}"
    for _ in range(200):
        if rows_of(example, about.run_id)[0].attempts:
            break
        await asyncio.sleep(0.05)
    [row] = rows_of(example, about.run_id)
    assert row.attempts == 1 and "ConnectError" in (row.last_error or "")
    await handle.terminate("test done: the endpoint will never answer")
