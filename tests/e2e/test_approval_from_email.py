"""The approvers' journey from a real email: the worker mails each approval request to a real
SMTP server, the link is taken from the HTML part's anchor (what a person clicks) and opened in
headless Chromium, where the person presses Approve — no token, no curl. After escalation, the
escalation contacts' emails carry links with which they decide for the silent roles.
Screenshots land in test-artifacts/screenshots/."""

from collections.abc import AsyncIterator, Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from api.example import platform_migration
from tests.conftest_stack import Example, Stack
from tests.e2e.browser import Browser
from tests.e2e.mail import Inbox, anchors, as_emailed, html_part, smtp_inbox, text_part, to
from tests.e2e.mail_stack import serve_mail_stack

PEOPLE = ("lead", "client", "lead_backup", "client_backup", "stranger")


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
    directory = tmp_path_factory.mktemp(f"from-email-{backend}")
    async with serve_mail_stack(backend, dev_server, directory, inbox) as served:
        yield served


async def example_with(stack: Stack, **approval: Any) -> Example:
    """The example engagement and its people, its approval policy changed by ``approval``."""
    people = {name: await stack.principal(name) for name in PEOPLE}
    response = await stack.post("/v1/customers", {"name": "Acme Corp", "currency": "USD"})
    assert response.status_code == 201, response.text
    customer = response.json()
    ids = [people[name]["id"] for name in PEOPLE[:4]]
    body = platform_migration(customer["id"], *ids)
    body["approval"].update(approval)
    response = await stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


async def phase_one_awaiting_approval(example: Example) -> tuple[str, dict[str, Any]]:
    response = await example.trigger(
        "phase-1", {"source": "delivery-tracker", "kpis": {"p95_latency_ms": "212"}}
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    return run_id, await example.wait_for_stage(run_id, "awaiting_approval")


def mail_to(example: Example, person: str, run_id: str, subject: str) -> Callable[[Message], bool]:
    address = example.people[person]["email"]
    return lambda m: to(address, run_id)(m) and subject in m["Subject"]


def clicked_link(message: Message, role: str) -> str:
    """The one link the HTML part offers, which says whom it is for; the text part has it too."""
    [(href, words)] = anchors(html_part(message))
    assert "/approve/" in href and role in words, (href, words)
    assert href in text_part(message)
    return href


async def test_both_approvers_follow_their_emails_press_approve_and_phase_one_is_billed(
    example: Example, inbox: Inbox, browser: Browser
):
    run_id, status = await phase_one_awaiting_approval(example)
    requested = "Approval requested: Assessment and cutover plan"
    [lead_mail] = await inbox.wait_for(mail_to(example, "lead", run_id, requested))
    [client_mail] = await inbox.wait_for(mail_to(example, "client", run_id, requested))

    deemed = as_emailed(status["deadlines"]["deemed_acceptance_at"])
    for part in (text_part(client_mail), html_part(client_mail)):
        assert "Platform migration" in part and "Assessment and cutover plan" in part
        assert "USD" in part and "30,000.00" in part and "27,000.00" in part
        assert any(f"deemed accepted on {written}" in part for written in deemed)

    await browser.open(clicked_link(lead_mail, "delivery_lead"))
    page = await browser.text()
    assert "Hello lead" in page and "Assessment and cutover plan" in page
    await browser.screenshot("email-01-delivery-lead-follows-the-email")
    await browser.submit("approve")
    assert "You approved on" in await browser.text()
    assert (await example.run(run_id))["pending_roles"] == ["client_ap"]

    await browser.open(clicked_link(client_mail, "client_ap"))
    page = await browser.text()
    assert "Hello client" in page
    assert "If you do nothing, this milestone is deemed accepted on" in page
    await browser.screenshot("email-02-client-follows-the-email")
    await browser.submit("approve")
    assert "You approved on" in await browser.text()

    billed = await example.wait_for_stage(run_id, "billed")
    assert billed["amounts"]["net_minor"] == 2_700_000
    assert {(d["role"], d["principal_id"], d["via"]) for d in billed["decisions"]} == {
        ("delivery_lead", example.people["lead"]["id"], "approver"),
        ("client_ap", example.people["client"]["id"], "approver"),
    }
    await browser.open(clicked_link(client_mail, "client_ap"))
    assert "This milestone is closed (billed)" in await browser.text()
    await browser.screenshot("email-03-client-sees-billed")


async def test_after_escalation_the_contacts_emailed_links_decide_for_the_silent_roles(
    stack: Stack, inbox: Inbox, browser: Browser
):
    # An ISO duration puts escalation two seconds after the request instead of four business
    # days; everything else is the example's policy.
    example = await example_with(stack, reminder_after=None, escalate_after={"duration": "PT2S"})
    run_id, _ = await phase_one_awaiting_approval(example)

    for person, role in (("client_backup", "client_ap"), ("lead_backup", "delivery_lead")):
        [mail] = await inbox.wait_for(mail_to(example, person, run_id, "Escalated to you"))
        await browser.open(clicked_link(mail, role))
        page = await browser.text()
        assert f"Hello {person}" in page and f"as {role}" in page
        assert "you may decide only once" not in page and await browser.has("decide")
        assert f"No one for {role} decided in time, so the decision was escalated to you" in page
        await browser.screenshot(f"email-04-{person}-follows-the-escalation-email")
        await browser.type("comment", f"Approved for {role}: no answer from its approver")
        await browser.submit("approve")
        assert "You approved on" in await browser.text()

    billed = await example.wait_for_stage(run_id, "billed")
    assert {(d["role"], d["principal_id"], d["via"]) for d in billed["decisions"]} == {
        ("delivery_lead", example.people["lead_backup"]["id"], "escalation"),
        ("client_ap", example.people["client_backup"]["id"], "escalation"),
    }
