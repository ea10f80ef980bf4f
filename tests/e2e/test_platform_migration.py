"""The brief's example end to end over HTTP: trigger → sign-off → invoice, escrow and audit."""

import asyncio

from sqlalchemy import update

from db.models import AuditEvent
from tests.conftest_stack import Example


async def test_phase_one_signed_off_by_both_roles_is_invoiced_with_retention_and_evidence(
    example: Example,
):
    pdf = await example.upload()
    response = await example.trigger(
        "phase-1",
        {
            "source": "delivery-tracker",
            "completion_percent": "100",
            "kpis": {"p95_latency_ms": "212"},
            "evidence_ids": [pdf["id"]],
            "external_ref": "JIRA-123",
            "note": "Phase 1 delivered",
        },
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert sorted(status["pending_roles"]) == ["client_ap", "delivery_lead"]
    assert {c["id"]: c["passed"] for c in status["criteria"]} == {"plan": None, "p95": True}

    lead = await example.decide(run_id, "delivery_lead", "lead", comment="Plan reviewed")
    assert lead.status_code == 202, lead.text
    assert lead.json()["pending_roles"] == ["client_ap"]
    client = await example.decide(run_id, "client_ap", "client", comment="Approved for payment")
    assert client.status_code == 202, client.text
    billed = await example.wait_for_stage(run_id, "billed")

    assert billed["amounts"] == {
        "gross_minor": 3_000_000,
        "retention_minor": 300_000,
        "net_minor": 2_700_000,
    }
    invoice = (await example.stack.get(f"/v1/invoices/{billed['invoice_id']}")).json()
    assert invoice["status"] == "draft"
    assert [(line["kind"], line["amount_minor"]) for line in invoice["lines"]] == [
        ("milestone", 3_000_000),
        ("retention_withheld", -300_000),
    ]
    assert invoice["total_minor"] == 2_700_000
    assert invoice["lines"][0]["evidence"] == [{"id": pdf["id"], "sha256": pdf["sha256"]}]
    listed = (await example.stack.get(f"/v1/customers/{example.customer['id']}/invoices")).json()
    assert [i["id"] for i in listed["items"]] == [invoice["id"]]

    engagement = await example.refresh()
    assert engagement["retention_balance_minor"] == 300_000
    phase1 = engagement["milestones"][0]
    assert (phase1["status"], phase1["billed_minor"], phase1["retention_held_minor"]) == (
        "accepted",
        3_000_000,
        300_000,
    )

    trail = (
        await example.stack.get(f"/v1/milestones/{example.milestone('phase-1')}/audit?limit=200")
    ).json()["items"]
    kinds = [e["kind"] for e in trail]
    assert kinds[:2] == ["trigger_received", "criteria_evaluated"]
    assert [e["data"]["role"] for e in trail if e["kind"] == "decision"] == [
        "delivery_lead",
        "client_ap",
    ]
    assert kinds.index("invoice_line_posted") > max(
        i for i, k in enumerate(kinds) if k == "decision"
    )
    assert trail[0]["evidence"] == [{"id": pdf["id"], "sha256": pdf["sha256"]}]
    posted = [e for e in trail if e["kind"] == "invoice_line_posted"]
    assert all(e["evidence"][0]["sha256"] == pdf["sha256"] for e in posted)
    verify = (
        await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
    ).json()
    assert verify["ok"] is True and verify["events"] >= len(trail)


async def test_phase_two_triggered_early_waits_for_phase_one_and_then_bills(example: Example):
    phase2 = (
        await example.trigger("phase-2", {"source": "ci", "kpis": {"error_rate_pct": "0.4"}})
    ).json()["run_id"]
    await example.wait_for_stage(phase2, "awaiting_approval")
    assert (await example.decide(phase2, "delivery_lead", "lead")).status_code == 202
    assert (await example.decide(phase2, "client_ap", "client")).status_code == 202
    waiting = await example.wait_for_stage(phase2, "waiting_on_dependency")
    assert waiting["waiting_on"] == ["phase-1"]
    assert (await example.refresh())["milestones"][1]["status"] == "in_review"

    phase1 = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(phase1, "awaiting_approval")
    await example.decide(phase1, "delivery_lead", "lead")
    await example.decide(phase1, "client_ap", "client")

    billed = await example.wait_for_stage(phase2, "billed")
    assert billed["amounts"]["gross_minor"] == 4_000_000
    engagement = await example.refresh()
    assert [m["status"] for m in engagement["milestones"]] == ["accepted", "accepted", "pending"]
    assert engagement["retention_balance_minor"] == 700_000


async def test_the_audit_chain_fails_verification_after_a_row_is_altered_by_hand(
    example: Example,
):
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    await example.decide(run_id, "delivery_lead", "lead")
    engagement_id = example.engagement["id"]
    for _ in range(100):  # the decision's audit event is written by an activity, just after
        trail = (
            await example.stack.get(f"/v1/engagements/{engagement_id}/audit?limit=200")
        ).json()["items"]
        if any(e["kind"] == "decision" for e in trail):
            break
        await asyncio.sleep(0.05)
    before = (await example.stack.get(f"/v1/engagements/{engagement_id}/audit/verify")).json()
    assert before["ok"] is True

    with example.stack.sessions.begin() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.engagement_id == engagement_id, AuditEvent.seq == 2)
            .values(actor="someone-else")
        )

    after = (await example.stack.get(f"/v1/engagements/{engagement_id}/audit/verify")).json()
    assert after == {"ok": False, "events": before["events"], "first_bad_seq": 2}
