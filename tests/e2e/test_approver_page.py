"""The approver page in a real browser (headless Chromium through Selenium, ``browser.py``), over
real HTTP, from links built here; ``test_approval_from_email.py`` starts from the emails instead.
Screenshots land in test-artifacts/screenshots/.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from api.example import SIGNOFF_PDF
from services.approval_links import Grant, approval_url, form_token, sign
from tests.conftest_stack import Example, serve_stack
from tests.e2e.browser import Browser


def link(example: Example, run_id: str, role: str, person: str, expires_in_days: int = 30) -> str:
    expires = datetime.now(UTC) + timedelta(days=expires_in_days)
    grant = Grant(run_id, role, example.people[person]["id"], expires)
    return approval_url(
        str(example.stack.http.base_url).rstrip("/"), example.stack.link_secret, grant
    )


async def awaiting_phase_one(example: Example) -> tuple[str, dict[str, Any]]:
    pdf = await example.upload()
    response = await example.trigger(
        "phase-1",
        {
            "source": "delivery-tracker",
            "kpis": {"p95_latency_ms": "212"},
            "evidence_ids": [pdf["id"]],
            "external_ref": "JIRA-123",
            "note": "Phase 1 delivered: cutover plan attached",
        },
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    return run_id, pdf


async def test_both_approvers_sign_off_from_their_links_and_the_milestone_is_billed(
    example: Example, browser: Browser
):
    run_id, pdf = await awaiting_phase_one(example)

    await browser.open(link(example, run_id, "delivery_lead", "lead"))
    page = await browser.text()
    assert "Assessment and cutover plan" in page
    assert "30,000.00 USD" in page and "3,000.00 USD" in page and "27,000.00 USD" in page
    assert "signoff.pdf" in page and pdf["sha256"] in page
    assert "Phase 1 delivered: cutover plan attached" in page and "JIRA-123" in page
    assert re.search(r"p95 latency under 300 ms\s+p95_latency_ms <= 300\s+212\s+pass", page)
    assert "If you do nothing" not in page  # the delivery lead is never accepted by silence
    await browser.screenshot("01-delivery-lead-opens-link")

    await browser.type("comment", "Plan reviewed")
    await browser.submit("approve")
    page = await browser.text()
    assert re.search(r"You approved on \w+day \d+ \w+ 20\d\d at \d\d:\d\d E[SD]T\.", page)
    assert not await browser.has("decide")
    assert (await example.run(run_id))["pending_roles"] == ["client_ap"]
    await browser.screenshot("02-delivery-lead-approved")

    await browser.open(link(example, run_id, "client_ap", "client"))
    page = await browser.text()
    assert re.search(r"If you do nothing, this milestone is deemed accepted on \w+day", page)
    assert re.search(r"delivery_lead\s+approved\s+lead\s+.*Plan reviewed", page)
    await browser.screenshot("03-client-sees-deemed-acceptance")
    await browser.submit("approve")
    assert "You approved on" in await browser.text()

    billed = await example.wait_for_stage(run_id, "billed")
    assert billed["amounts"]["net_minor"] == 2_700_000
    await browser.open(link(example, run_id, "client_ap", "client"))
    assert "This milestone is closed (billed)" in await browser.text()
    await browser.screenshot("04-client-sees-billed")


async def test_the_links_evidence_downloads_only_what_is_attached_to_its_run(example: Example):
    run_id, pdf = await awaiting_phase_one(example)
    url = link(example, run_id, "client_ap", "client")
    download = await example.stack.http.get(f"{url}/evidence/{pdf['id']}")
    assert download.status_code == 200
    assert download.content == SIGNOFF_PDF
    other = await example.upload(b"%PDF-1.4 someone else's file", "other.pdf")
    refused = await example.stack.http.get(f"{url}/evidence/{other['id']}")
    assert refused.status_code == 404
    assert "This run has no such file" in refused.text


async def test_rejecting_without_a_comment_shows_the_error_and_sends_nothing(
    example: Example, browser: Browser, tmp_path: Path
):
    run_id, _ = await awaiting_phase_one(example)
    await browser.open(link(example, run_id, "client_ap", "client"))
    await browser.submit("reject")
    page = await browser.text()
    assert "A rejection needs a comment" in page
    assert sorted((await example.run(run_id))["pending_roles"]) == ["client_ap", "delivery_lead"]
    await browser.screenshot("05-reject-without-comment")

    findings = tmp_path / "review-findings.txt"
    findings.write_text("Section 4 (rollback) is empty.\n")
    await browser.type("comment", "Cutover plan misses the rollback section")
    await browser.type("evidence-file", str(findings))
    await browser.submit("reject")
    page = await browser.text()
    assert "You rejected on" in page and "review-findings.txt" in page
    await browser.screenshot("06-client-rejected-with-evidence")
    rejected = await example.wait_for_stage(run_id, "rejected")
    [decision] = rejected["decisions"]
    assert decision["comment"] == "Cutover plan misses the rollback section"
    url = link(example, run_id, "client_ap", "client")
    cited = await example.stack.http.get(f"{url}/evidence/{decision['evidence_ids'][0]}")
    assert cited.content == b"Section 4 (rollback) is empty.\n"


async def test_an_expired_link_shows_the_expired_page(example: Example, browser: Browser):
    run_id, _ = await awaiting_phase_one(example)
    await browser.open(link(example, run_id, "client_ap", "client", expires_in_days=-1))
    page = await browser.text()
    assert "This link has expired" in page and "No decision can be taken with it" in page
    assert not await browser.has("decide")
    await browser.screenshot("07-expired-link")


async def post_form(example: Example, url: str, decision: str, comment: str = "") -> Any:
    """A post as the page's form sends it, with a valid CSRF token for the link."""
    token = url.rsplit("/", 1)[1]
    body = {
        "csrf": form_token(example.stack.link_secret, token),
        "decision": decision,
        "comment": comment,
    }
    return await example.stack.http.post(url, data=body)


async def test_a_used_link_says_the_role_has_already_decided(example: Example):
    run_id, _ = await awaiting_phase_one(example)
    url = link(example, run_id, "delivery_lead", "lead")
    first = await post_form(example, url, "approve")
    assert first.status_code == 303 and first.headers["location"].endswith(url.rsplit("/", 1)[1])
    again = await post_form(example, url, "approve")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("text/html")
    assert "Role &#39;delivery_lead&#39; has already decided." in again.text


async def test_an_escalation_contacts_link_is_refused_before_escalation(example: Example):
    run_id, _ = await awaiting_phase_one(example)
    url = link(example, run_id, "client_ap", "client_backup")
    page = await example.stack.http.get(url)
    assert page.status_code == 200
    assert "You are an escalation contact for client_ap" in page.text
    assert 'id="decide"' not in page.text
    refused = await post_form(example, url, "approve")
    assert refused.status_code == 403
    assert "may not decide for &#39;client_ap&#39; (not escalated)" in refused.text
    assert "client_ap" in (await example.run(run_id))["pending_roles"]


async def test_a_post_without_the_pages_form_token_is_refused(example: Example):
    run_id, _ = await awaiting_phase_one(example)
    url = link(example, run_id, "client_ap", "client")
    forged = await example.stack.http.post(url, data={"decision": "approve", "csrf": "forged"})
    assert forged.status_code == 403 and "Form expired" in forged.text
    other_link = link(example, run_id, "delivery_lead", "lead").rsplit("/", 1)[1]
    borrowed = {"decision": "approve", "csrf": form_token(example.stack.link_secret, other_link)}
    assert (await example.stack.http.post(url, data=borrowed)).status_code == 403
    assert sorted((await example.run(run_id))["pending_roles"]) == ["client_ap", "delivery_lead"]


async def test_a_tampered_link_shows_an_invalid_link_page(example: Example):
    run_id, _ = await awaiting_phase_one(example)
    url = link(example, run_id, "client_ap", "client")
    tampered = await example.stack.http.get(url[:-3] + "xyz")
    assert tampered.status_code == 400
    assert "This link is not valid" in tampered.text
    assert "Traceback" not in tampered.text


async def test_without_a_link_secret_the_page_says_links_are_switched_off(
    dev_server: WorkflowEnvironment, tmp_path: Path
):
    async with serve_stack("sqlite", dev_server, tmp_path, link_secret="") as unsigned:
        grant = Grant("run-x", "client_ap", "prn_x", datetime.now(UTC) + timedelta(days=1))
        page = await unsigned.http.get(f"/approve/{sign('another-secret', grant)}")
    assert page.status_code == 503
    assert "Approval links are switched off" in page.text


async def test_a_change_orders_link_shows_what_would_change(example: Example):
    changes = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}
    proposed = await example.awaiting_change_order(changes, "Scope grew")
    page = await example.stack.http.get(link(example, proposed["run_id"], "client_ap", "client"))
    assert page.status_code == 200
    assert f"Change order {proposed['id']}" in page.text
    assert "Reason: Scope grew" in page.text and "Update phase-3" in page.text
    assert "this change order is deemed accepted on" in page.text
