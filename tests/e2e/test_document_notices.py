"""Notices about documents that arrive: finalizing an invoice and clawing a bonus back are told
by email (a real SMTP server) to the operators and the customer's billing contact, and by signed
webhooks (a real HTTP receiver verifying Standard Webhooks signatures) to every endpoint
subscribed on an engagement the document bills or on the customer — once each."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from email.message import Message
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.money import format_minor
from tests.api.test_bonus_and_success_fees import LAUNCH_BONUS, engage
from tests.api.test_kpi_reports import post_report, watch_until, watched
from tests.conftest_stack import Example, Stack
from tests.e2e.hooks import Receiver
from tests.e2e.mail import Inbox, html_part, smtp_inbox, text_part
from tests.e2e.mail_stack import serve_mail_stack

OPERATORS = "billing-ops@example.com"
BREACH = "error_rate_pct 0.9 breaks error_rate_pct <= 0.5"


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
    """The whole stack delivering as it goes, operators' notices mailed to OPERATORS."""
    backend: str = request.param
    directory = tmp_path_factory.mktemp(f"documents-{backend}")
    async with serve_mail_stack(
        backend, dev_server, directory, inbox, operators_email=OPERATORS
    ) as served:
        yield served


async def subscribe(
    example: Example, hooks: Receiver, base: str, events: list[str], **owner: str
) -> str:
    """A fresh endpoint on the receiver for these events; its path name."""
    name = f"{events[0]}-{uuid.uuid4().hex[:8]}"
    response = await example.stack.post(
        "/v1/webhook-endpoints", {"url": f"{base}/{name}", "events": events, **owner}
    )
    assert response.status_code == 201, response.text
    hooks.secrets[name] = response.json()["secret"]
    return name


async def get(stack: Stack, path: str) -> Any:
    response = await stack.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def all_delivered(stack: Stack, document_id: str, count: int) -> list[dict[str, Any]]:
    """The document's notifications once all ``count`` of them are delivered."""
    for _ in range(300):
        rows = (await get(stack, f"/v1/notifications?run_id={document_id}"))["items"]
        if len(rows) >= count and all(r["status"] == "delivered" for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"the notices about {document_id} were not all delivered: {rows}")


def posts(hooks: Receiver, name: str, kind: str) -> list[dict[str, Any]]:
    """The verified posts of ``kind`` the endpoint ``name`` accepted."""
    return [r["payload"] for r in hooks.of(name) if r["ok"] and r["payload"]["type"] == kind]


def subject(message: Message) -> str:
    """The Subject header unfolded (a long one arrives folded over lines)."""
    return "".join(message["Subject"].splitlines())


def about(address: str, document_id: str) -> Callable[[Message], bool]:
    """The messages to ``address`` about one document (its id is in every notice about it)."""
    return lambda m: m["To"] == address and document_id in text_part(m)


async def bill_phase_one(example: Example) -> None:
    response = await example.trigger("phase-1", {"kpis": {"p95_latency_ms": "212"}})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert (await example.decide(run_id, "delivery_lead", "lead")).is_success
    assert (await example.decide(run_id, "client_ap", "client")).is_success
    await example.wait_for_stage(run_id, "billed")


async def test_an_invoice_and_its_clawback_are_told_to_subscribers_operators_and_billing_contact(
    example: Example, inbox: Inbox, receiver: tuple[Receiver, str]
):
    hooks, base = receiver
    stack, first = example.stack, example.engagement
    await bill_phase_one(example)
    # The launch bonus on a second engagement of the same customer: one invoice spans both.
    await engage(example, LAUNCH_BONUS)
    bonus = await example.trigger("launch-bonus", {"kpis": {"error_rate_pct": "0.4"}})
    assert bonus.status_code == 202, bonus.text
    invoice_id = (await example.wait_for_stage(bonus.json()["run_id"], "billed"))["invoice_id"]
    bonus_id = example.milestone("launch-bonus")
    await watched(example, bonus_id)

    both = ["invoice_finalized", "clawback_issued"]
    on_first = await subscribe(example, hooks, base, both, engagement_id=first["id"])
    on_customer = await subscribe(example, hooks, base, both, customer_id=example.customer["id"])
    on_bonus = await subscribe(
        example, hooks, base, ["clawback_issued"], engagement_id=example.engagement["id"]
    )
    unsubscribed = await subscribe(example, hooks, base, ["run_billed"], engagement_id=first["id"])

    finalized = await stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert finalized.status_code == 200, finalized.text
    invoice = finalized.json()
    number, total = invoice["number"], format_minor(invoice["total_minor"], "USD")
    # operators, the client_ap principal (both engagements name the same one), two endpoints
    await all_delivered(stack, invoice_id, 4)

    for name in (on_first, on_customer):  # billed by the first engagement, and the customer's
        [post] = posts(hooks, name, "invoice_finalized")
        data = post["data"]
        assert (data["invoice_id"], data["number"], data["currency"]) == (invoice_id, number, "USD")
        assert (data["issued_on"], data["due_on"]) == (invoice["issued_on"], invoice["due_on"])
        assert data["total_minor"] == invoice["total_minor"] == 3_150_000
        assert [(line["description"], line["amount_minor"]) for line in data["lines"]] == [
            (line["description"], line["amount_minor"]) for line in invoice["lines"]
        ]
        assert set(data["engagement_ids"]) == {first["id"], example.engagement["id"]}
    assert posts(hooks, on_bonus, "invoice_finalized") == [] and hooks.of(unsubscribed) == []

    [ops] = await inbox.wait_for(about(OPERATORS, invoice_id))
    [client] = await inbox.wait_for(about(example.people["client"]["email"], invoice_id))
    assert subject(ops) == f"[Tollgate] Invoice {number} finalized: {total} USD due " + (
        _day(invoice["due_on"])
    )
    for message in (ops, client):
        text, html = text_part(message), html_part(message)
        assert f"Total: {total} USD" in text and total in html
        assert f"Issued: {_day(invoice['issued_on'])}" in text
        for line in invoice["lines"]:
            shown = f"{line['description']}: {format_minor(line['amount_minor'], 'USD')}"
            assert shown in text

    # A KPI report that breaks the bonus's terms: the finalized invoice gets a credit note.
    breach = await post_report(example, bonus_id, {"kpis": {"error_rate_pct": "0.9"}})
    assert breach.status_code == 202, breach.text
    await watch_until(example, bonus_id, lambda v: v["stage"] == "clawed_back", "clawed back")
    [note] = (await get(stack, f"/v1/customers/{example.customer['id']}/credit-notes"))["items"]
    await all_delivered(stack, note["id"], 4)  # operators, client_ap, customer's and bonus's

    bonus_line = next(line for line in invoice["lines"] if line["run_id"] == bonus.json()["run_id"])
    for name in (on_customer, on_bonus):
        [post] = posts(hooks, name, "clawback_issued")
        data = post["data"]
        assert (data["credit_note_id"], data["credit_note_number"]) == (note["id"], note["number"])
        assert (data["invoice_id"], data["invoice_number"]) == (invoice_id, number)
        assert (data["invoice_line_id"], data["amount_minor"]) == (bonus_line["id"], 500_000)
        assert (data["reason"], data["report"]["report_id"]) == (
            BREACH,
            breach.json()["report_id"],
        )
    assert posts(hooks, on_first, "clawback_issued") == []  # not the first engagement's line
    assert len(hooks.of(on_customer)) == 2  # one invoice, one clawback: each told once

    [ops] = await inbox.wait_for(about(OPERATORS, note["id"]))
    assert subject(ops) == (
        f"[Tollgate] Clawback issued: credit note {note['number']}, 5,000.00 USD "
        f"({LAUNCH_BONUS['name']})"
    )
    text = text_part(ops)
    assert "Credited: -5,000.00 USD" in text
    assert f"Invoice: {number}" in text and f"Line credited: {bonus_line['description']}" in text
    assert f"Reason: {BREACH}" in text
    await inbox.wait_for(about(example.people["client"]["email"], note["id"]))


def _day(iso_date: str) -> str:
    return date.fromisoformat(iso_date).strftime("%a %d %b %Y")
