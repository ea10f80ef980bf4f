"""Per-encounter billing over real HTTP: payers and fee schedules, encounter uploads (JSON, NDJSON,
CSV) with an answer per row, and the BillEncounters workflow posting one line per encounter."""

import asyncio
import json
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from api.example import platform_migration
from tests.conftest_stack import Stack

VISIT, THERAPY, XRAY = "99213", "97110", "G0439"
SCHEDULE_2026 = {
    "effective_from": "2026-01-01",
    "entries": [
        {"procedure_code": VISIT, "amount_minor": 10_000, "modifiers": {"25": "90"}},
        {"procedure_code": THERAPY, "amount_minor": 3_333, "units": 4},
        {"procedure_code": XRAY, "amount_minor": 7_501, "modifiers": {"26": "40", "50": "150"}},
    ],
}
NET_45 = {"duration": "P45D"}


class Encounters:
    """An engagement whose customer names a fresh payer with SCHEDULE_2026."""

    def __init__(self, stack: Stack, engagement: dict[str, Any], payer_id: str) -> None:
        self.stack, self.engagement, self.payer_id = stack, engagement, payer_id

    @property
    def path(self) -> str:
        return f"/v1/engagements/{self.engagement['id']}/encounters"

    async def upload(self, content: str, media: str, token: str | None = None) -> httpx.Response:
        return await self.stack.http.post(
            self.path,
            content=content.encode(),
            headers={**self.stack.auth(token), "Content-Type": media},
        )

    async def billed(self, batch_id: str) -> dict[str, Any]:
        """The batch once its workflow has billed every accepted encounter."""
        path = f"/v1/engagements/{self.engagement['id']}/encounter-batches/{batch_id}"
        for _ in range(300):
            response = await self.stack.get(path)
            assert response.status_code == 200, response.text
            batch = response.json()
            if batch["billed"] == batch["accepted"]:
                return batch
            await asyncio.sleep(0.1)
        raise AssertionError(f"batch {batch_id} never billed: {batch}")

    async def invoice(self, invoice_id: str) -> dict[str, Any]:
        response = await self.stack.get(f"/v1/invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        return response.json()


async def new_encounters(stack: Stack) -> Encounters:
    payer_id = f"payer-{uuid.uuid4().hex[:12]}"
    payer = {"id": payer_id, "name": "Blue Shield", "currency": "USD", "payment_terms": NET_45}
    response = await stack.post("/v1/payers", payer)
    assert response.status_code == 201, response.text
    response = await stack.http.put(
        f"/v1/payers/{payer_id}/fee-schedule", json=SCHEDULE_2026, headers=stack.auth()
    )
    assert response.status_code == 201, response.text
    people = [(await stack.principal(n))["id"] for n in ("lead", "client", "lb", "cb")]
    customer = {"name": "Clinic", "currency": "USD", "metadata": {"payer_id": payer_id}}
    response = await stack.post("/v1/customers", customer)
    assert response.status_code == 201, response.text
    response = await stack.post(
        "/v1/engagements", platform_migration(response.json()["id"], *people)
    )
    assert response.status_code == 201, response.text
    return Encounters(stack, response.json(), payer_id)


def expected_minor(unit_minor: int, units: int, *percents: str) -> int:
    exact = Decimal(unit_minor) * units
    for percent in percents:
        exact = exact * Decimal(percent) / 100
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def batch_rows(n: int) -> tuple[list[dict[str, Any]], list[int]]:
    """``n`` good encounters of three codes, and what each should bill."""
    rows, amounts = [], []
    for i in range(n):
        service_date = (date(2026, 2, 1) + timedelta(days=i % 200)).isoformat()
        row: dict[str, Any] = {
            "encounter_id": f"E-{i:05d}",
            "service_date": service_date,
            "patient_ref": f"PATIENT-SECRET-{i:05d}",
        }
        if i % 3 == 0:
            row |= {"procedure_code": VISIT}
            amounts.append(10_000)
        elif i % 3 == 1:
            row |= {"procedure_code": THERAPY, "units": 1 + i % 4}
            amounts.append(3_333 * (1 + i % 4))
        else:
            row |= {"procedure_code": XRAY, "modifiers": ["50", "26"]}
            amounts.append(expected_minor(7_501, 1, "150", "40"))
        rows.append(row)
    return rows, amounts


async def test_a_thousand_row_batch_with_three_bad_rows_bills_the_other_997(stack: Stack):
    enc = await new_encounters(stack)
    rows, amounts = batch_rows(997)
    bad = [
        (100, {**rows[0], "encounter_id": "E-BAD-CODE", "procedure_code": "99999"}),
        (500, {**rows[0], "encounter_id": "E-TOO-EARLY", "service_date": "2025-12-31"}),
        (900, {**rows[1], "procedure_code": THERAPY, "units": 2}),  # E-00001 again
    ]
    for position, row in bad:
        rows.insert(position - 1, row)
    ndjson = "\n".join(json.dumps(r) for r in rows) + "\n"

    response = await enc.upload(ndjson, "application/x-ndjson")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["refused"], len(body["results"])) == (997, 3, 1000)
    refusals = {r["row"]: r for r in body["results"] if r["status"] != 201}
    assert {row: (r["status"], r["error"]["type"]) for row, r in refusals.items()} == {
        100: (422, "unknown-procedure-code"),
        500: (422, "no-schedule-in-effect"),
        900: (409, "duplicate-encounter"),
    }
    assert "99999" in refusals[100]["error"]["detail"]
    assert "2025-12-31" in refusals[500]["error"]["detail"]
    assert refusals[900]["encounter_id"] == "E-00001"
    accepted = [r["amount_minor"] for r in body["results"] if r["status"] == 201]
    assert accepted == amounts
    assert body["billing"] == "started"

    batch = await enc.billed(body["batch_id"])
    assert batch["billed_minor"] == sum(amounts) == batch["total_minor"]
    [invoice_id] = batch["invoice_ids"]
    invoice = await enc.invoice(invoice_id)
    lines = [line for line in invoice["lines"] if line["kind"] == "encounter"]
    assert len(lines) == len(invoice["lines"]) == 997
    assert sum(line["amount_minor"] for line in lines) == sum(amounts) == invoice["total_minor"]
    xray = next(line for line in lines if line["details"]["encounter_id"] == "E-00002")
    assert xray["description"] == f"{XRAY} on 2026-02-03"
    assert xray["details"] | {"payer_id": None} == {
        "encounter_id": "E-00002",
        "procedure_code": XRAY,
        "service_date": "2026-02-03",
        "unit_amount_minor": 7_501,
        "units": 1,
        "modifiers": [{"code": "50", "percent": "150"}, {"code": "26", "percent": "40"}],
        "payer_id": None,
        "fee_schedule_effective_from": "2026-01-01",
    }
    assert "PATIENT-SECRET" not in json.dumps(invoice)

    finalized = await stack.post(f"/v1/invoices/{invoice_id}/finalize", {})
    assert finalized.status_code == 200, finalized.text
    dates = finalized.json()
    issued, due = date.fromisoformat(dates["issued_on"]), date.fromisoformat(dates["due_on"])
    assert due - issued == timedelta(days=45)  # the payer's terms, not the engagement's


async def test_a_csv_upload_answers_each_row(stack: Stack):
    enc = await new_encounters(stack)
    csv = (
        "encounter_id,procedure_code,modifiers,units,service_date,patient_ref\n"
        f"C-1,{VISIT},25,,2026-03-02,MRN-1\n"
        f"C-2,{THERAPY},,3,2026-03-02,\n"
        f"C-3,{XRAY},59,,2026-03-03,MRN-3\n"
        f"C-4,{THERAPY},,five,2026-03-03,\n"
    )
    response = await enc.upload(csv, "text/csv")

    assert response.status_code == 200, response.text
    results = {r["encounter_id"]: r for r in response.json()["results"]}
    assert results["C-1"]["amount_minor"] == 9_000
    assert results["C-2"]["amount_minor"] == 9_999
    assert (results["C-3"]["status"], results["C-3"]["error"]["type"]) == (422, "unknown-modifier")
    assert (results["C-4"]["status"], results["C-4"]["error"]["type"]) == (422, "validation-error")
    assert [r["row"] for r in response.json()["results"]] == [1, 2, 3, 4]
    batch = await enc.billed(response.json()["batch_id"])
    assert batch["billed_minor"] == 18_999

    header_only = await enc.upload("encounter_id,code\n", "text/csv")
    assert header_only.status_code == 422, header_only.text


async def test_a_schedule_change_never_reprices_billed_encounters(stack: Stack):
    enc = await new_encounters(stack)
    one = {"encounter_id": "J-1", "procedure_code": VISIT, "service_date": "2026-03-02"}
    response = await stack.post(enc.path, one)
    assert response.status_code == 201, response.text
    assert response.json()["amount_minor"] == 10_000
    first = await enc.billed(response.json()["batch_id"])

    raised = {
        "effective_from": "2026-02-01",
        "entries": [{"procedure_code": VISIT, "amount_minor": 12_500}],
    }
    schedule = f"/v1/payers/{enc.payer_id}/fee-schedule"
    response = await stack.http.put(schedule, json=raised, headers=stack.auth())
    assert response.status_code == 201, response.text
    again = await stack.http.put(schedule, json=raised, headers=stack.auth())
    assert (again.status_code, again.json()["id"]) == (200, response.json()["id"])
    changed = {**raised, "entries": [{"procedure_code": VISIT, "amount_minor": 1}]}
    conflict = await stack.http.put(schedule, json=changed, headers=stack.auth())
    assert conflict.status_code == 409, conflict.text

    later = {"encounter_id": "J-2", "procedure_code": VISIT, "service_date": "2026-03-02"}
    response = await stack.post(enc.path, later)
    assert response.json()["amount_minor"] == 12_500
    await enc.billed(response.json()["batch_id"])
    invoice = await enc.invoice(first["invoice_ids"][0])
    by_encounter = {line["details"]["encounter_id"]: line for line in invoice["lines"]}
    assert by_encounter["J-1"]["amount_minor"] == 10_000
    assert by_encounter["J-1"]["details"]["fee_schedule_effective_from"] == "2026-01-01"
    assert by_encounter["J-2"]["amount_minor"] == 12_500
    viewed = await stack.get(f"{enc.path}/J-1")
    assert viewed.json()["amount_minor"] == 10_000

    duplicate = await stack.post(enc.path, one)
    assert duplicate.status_code == 409, duplicate.text
    assert "same content" in duplicate.json()["detail"]


async def test_one_refused_encounter_is_a_problem_and_records_nothing(stack: Stack):
    enc = await new_encounters(stack)
    row = {"encounter_id": "R-1", "procedure_code": "00000", "service_date": "2026-03-02"}
    response = await stack.post(enc.path, row)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tollgate:problem:unknown-procedure-code"
    assert (await stack.get(f"{enc.path}/R-1")).status_code == 404
    floats = await stack.post(enc.path, {**row, "procedure_code": VISIT, "units": 1.0})
    assert floats.status_code == 422, floats.text


async def test_patient_refs_are_shown_to_the_admin_only(stack: Stack):
    enc = await new_encounters(stack)
    response = await stack.post(f"/v1/engagements/{enc.engagement['id']}/integration-tokens", {})
    token = response.json()["token"]
    row = {
        "encounter_id": "P-1",
        "procedure_code": VISIT,
        "service_date": "2026-03-02",
        "patient_ref": "MRN-778",
    }
    response = await enc.upload(json.dumps(row) + "\n", "application/x-ndjson", token)
    assert response.json()["accepted"] == 1, response.text
    as_admin = (await stack.get(f"{enc.path}/P-1")).json()
    as_integration = (await stack.get(f"{enc.path}/P-1", token)).json()
    assert as_admin["patient_ref"] == "MRN-778"
    assert "patient_ref" not in as_integration
    assert as_integration["amount_minor"] == 10_000


async def test_a_principal_cannot_post_encounters(stack: Stack):
    enc = await new_encounters(stack)
    person = await stack.principal("outsider")
    row = {"encounter_id": "X-1", "procedure_code": VISIT, "service_date": "2026-03-02"}
    response = await stack.post(enc.path, row, person["token"])
    assert response.status_code == 403, response.text


async def test_the_upload_path_takes_more_than_a_mebibyte_but_not_without_bound(stack: Stack):
    enc = await new_encounters(stack)
    row = {"encounter_id": "B-1", "procedure_code": VISIT, "service_date": "2026-03-02"}
    padded = "\n" * (1536 * 1024) + json.dumps(row) + "\n"
    response = await enc.upload(padded, "application/x-ndjson")
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    huge = "\n" * (5 * 1024 * 1024)
    response = await enc.upload(huge, "application/x-ndjson")
    assert response.status_code == 413, response.text
