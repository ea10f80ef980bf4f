"""Encounter sign-off (``"encounters": "sign_off"`` in the engagement's approval), over real HTTP
on both databases: each uploaded batch waits for the engagement's dual sign-off as one run and
bills only once both roles approve; a rejected batch bills nothing, its encounters say so, and
they are posted again under new ids."""

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.example import platform_migration
from services.approval_links import Grant, approval_url
from tests.api.problems import assert_problem
from tests.api.test_encounters import NET_45, SCHEDULE_2026, THERAPY, VISIT, Encounters
from tests.conftest_stack import Example, Stack


async def signed(stack: Stack) -> tuple[Example, Encounters]:
    """An engagement whose approval signs encounters off; its customer names a fresh payer."""
    payer_id = f"payer-{uuid.uuid4().hex[:12]}"
    payer = {"id": payer_id, "name": "Blue Shield", "currency": "USD", "payment_terms": NET_45}
    assert (await stack.post("/v1/payers", payer)).status_code == 201
    schedule = await stack.http.put(
        f"/v1/payers/{payer_id}/fee-schedule", json=SCHEDULE_2026, headers=stack.auth()
    )
    assert schedule.status_code == 201, schedule.text
    people = {name: await stack.principal(name) for name in ("lead", "client", "lb", "cb")}
    customer = {"name": "Clinic", "currency": "USD", "metadata": {"payer_id": payer_id}}
    customer = (await stack.post("/v1/customers", customer)).json()
    body = platform_migration(customer["id"], *(p["id"] for p in people.values()))
    body["approval"]["encounters"] = "sign_off"
    response = await stack.post("/v1/engagements", body)
    assert response.status_code == 201, response.text
    engagement = response.json()
    return Example(stack, people, customer, engagement), Encounters(stack, engagement, payer_id)


def ndjson(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


async def batch_in(enc: Encounters, batch_id: str, status: str) -> dict[str, Any]:
    path = f"/v1/engagements/{enc.engagement['id']}/encounter-batches/{batch_id}"
    for _ in range(300):
        batch = (await enc.stack.get(path)).json()
        if batch["status"] == status:
            return batch
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {batch_id} never became {status}: {batch['status']}")


async def audit_kinds(example: Example) -> list[str]:
    path, kinds, cursor = f"/v1/engagements/{example.engagement['id']}/audit", [], None
    while True:
        page = (await example.stack.get(path + (f"?cursor={cursor}" if cursor else ""))).json()
        kinds += [e["kind"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            return kinds


async def test_a_batch_waits_for_sign_off_and_bills_only_after_both_roles_approve(stack: Stack):
    example, enc = await signed(stack)
    eng = enc.engagement["id"]
    assert enc.engagement["approval"]["encounters"] == "sign_off"
    rows = [
        {"encounter_id": "S-1", "procedure_code": VISIT, "service_date": "2026-03-02"},
        {
            "encounter_id": "S-2",
            "procedure_code": THERAPY,
            "units": 3,
            "service_date": "2026-03-02",
        },
        {"encounter_id": "S-3", "procedure_code": "99999", "service_date": "2026-03-02"},
    ]

    upload = await enc.upload(ndjson(*rows), "application/x-ndjson")

    assert upload.status_code == 200, upload.text
    answer = upload.json()
    assert (answer["accepted"], answer["refused"], answer["billing"]) == (2, 1, "awaiting_sign_off")
    run_id = answer["sign_off_run_id"]
    assert run_id == f"encounters:{eng}:{answer['batch_id']}:sign-off"
    run = await example.wait_for_stage(run_id, "awaiting_approval")
    assert run["kind"] == "encounters"
    assert (run["details"]["count"], run["details"]["total_minor"]) == (2, 10_000 + 3 * 3_333)
    ids_sha256 = hashlib.sha256(b"S-1\nS-2").hexdigest()
    assert run["details"]["encounter_ids_sha256"] == ids_sha256
    assert sorted(run["pending_roles"]) == ["client_ap", "delivery_lead"]
    # The approver's page (from the emailed link) says what the batch is.
    grant = Grant(
        run_id, "client_ap", example.people["client"]["id"], datetime.now(UTC) + timedelta(days=1)
    )
    page = await stack.http.get(approval_url(str(stack.http.base_url), stack.link_secret, grant))
    assert f"Encounter batch {answer['batch_id']}" in page.text
    assert "2 encounters, 199.99 USD" in page.text and ids_sha256 in page.text
    batch = await batch_in(enc, answer["batch_id"], "awaiting_sign_off")
    assert (batch["billed"], batch["invoice_ids"], batch["sign_off_run_id"]) == (0, [], run_id)
    encounter = (await stack.get(f"/v1/engagements/{eng}/encounters/S-1")).json()
    assert (encounter["status"], encounter["invoice_id"]) == ("pending_sign_off", None)
    # Asking to bill it joins the sign-off rather than billing around it.
    bill = await stack.post(f"/v1/engagements/{eng}/encounter-batches/{batch['batch_id']}/bill", {})
    assert bill.status_code == 200, bill.text
    assert (bill.json()["status"], bill.json()["billed"]) == ("awaiting_sign_off", 0)

    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await batch_in(enc, batch["batch_id"], "awaiting_sign_off"))["billed"] == 0
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202

    billed = await example.wait_for_stage(run_id, "billed")
    batch = await batch_in(enc, batch["batch_id"], "billed")
    assert (batch["billed"], batch["billed_minor"]) == (2, 10_000 + 3 * 3_333)
    assert billed["invoice_id"] == batch["invoice_ids"][0]
    invoice = await enc.invoice(billed["invoice_id"])
    assert sorted(line["description"] for line in invoice["lines"]) == [
        f"{THERAPY} on 2026-03-02",
        f"{VISIT} on 2026-03-02",
    ]
    kinds = await audit_kinds(example)
    assert kinds.index("encounters_sign_off_requested") < kinds.index("encounters_billed")
    assert kinds.index("encounters_billed") < kinds.index("encounters_signed_off")


async def test_a_rejected_batch_bills_nothing_and_its_encounters_go_again_under_new_ids(
    stack: Stack,
):
    example, enc = await signed(stack)
    eng = enc.engagement["id"]
    visit = {"encounter_id": "R-1", "procedure_code": VISIT, "service_date": "2026-03-02"}
    first = await enc.upload(json.dumps(visit), "application/json")
    assert first.status_code == 201, first.text
    assert first.json()["billing"] == "awaiting_sign_off"
    run_id, batch_id = first.json()["sign_off_run_id"], first.json()["batch_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")

    rejected = await example.decide(run_id, "client_ap", "client", "reject", "not our patient")
    assert rejected.status_code == 202, rejected.text

    assert (await example.wait_for_stage(run_id, "rejected"))["invoice_id"] is None
    batch = await batch_in(enc, batch_id, "rejected")
    assert (batch["billed"], batch["invoice_ids"]) == (0, [])
    encounter = (await stack.get(f"/v1/engagements/{eng}/encounters/R-1")).json()
    assert (encounter["status"], encounter["invoice_id"]) == ("rejected", None)
    assert "encounters_sign_off_rejected" in await audit_kinds(example)
    bill = await stack.post(f"/v1/engagements/{eng}/encounter-batches/{batch_id}/bill", {})
    assert assert_problem(bill, 409)["type"].endswith("batch-not-signed-off")
    again = assert_problem(await enc.upload(json.dumps(visit), "application/json"), 409)
    assert "rejected at sign-off" in again["detail"]

    renamed = await enc.upload(json.dumps({**visit, "encounter_id": "R-1b"}), "application/json")

    assert renamed.status_code == 201, renamed.text
    assert renamed.json()["billing"] == "awaiting_sign_off"
    assert renamed.json()["batch_id"] != batch_id


async def test_an_unknown_encounters_option_is_refused(stack: Stack):
    people = [(await stack.principal(n))["id"] for n in ("lead", "client", "lb", "cb")]
    customer = (await stack.post("/v1/customers", {"name": "C", "currency": "USD"})).json()
    body = platform_migration(customer["id"], *people)
    body["approval"]["encounters"] = "sometimes"
    assert_problem(await stack.post("/v1/engagements", body), 422, "approval.encounters")


async def test_a_cancelled_sign_off_leaves_its_batch_cancelled_and_unbilled(stack: Stack):
    example, enc = await signed(stack)
    visit = {"encounter_id": "C-1", "procedure_code": VISIT, "service_date": "2026-03-02"}
    first = (await enc.upload(json.dumps(visit), "application/json")).json()
    await example.wait_for_stage(first["sign_off_run_id"], "awaiting_approval")

    cancel = await stack.post(
        f"/v1/runs/{first['sign_off_run_id']}/cancel", {"reason": "uploaded twice"}
    )

    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["stage"] == "cancelled"
    batch = await batch_in(enc, first["batch_id"], "cancelled")
    assert (batch["billed"], batch["invoice_ids"]) == (0, [])
