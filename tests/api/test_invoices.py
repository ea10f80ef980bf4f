"""Invoices become documents over real HTTP: finalizing numbers, dates and freezes a draft;
credit notes give back part of a finalized invoice, never more than was invoiced."""

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from activities.approval import calendar_of
from api.example import platform_migration
from db.models import AuditEvent, CreditNote, CreditNoteLine, DocumentSequence, Invoice, new_id
from domain.calendar import is_business_day
from tests.api.problems import assert_problem
from tests.conftest_stack import Example

NUMBER = re.compile(r"TG-(\d{4})-(\d{6})")
NEW_YORK = ZoneInfo("America/New_York")


async def bill(example: Example, key: str = "phase-1", kpis: dict[str, str] | None = None) -> str:
    """Trigger the milestone, have both roles approve, and return the invoice it was billed on."""
    body = {"source": "test", "kpis": kpis or {"p95_latency_ms": "212"}}
    response = await example.trigger(key, body)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    assert (await example.decide(run_id, "delivery_lead", "lead")).status_code == 202
    assert (await example.decide(run_id, "client_ap", "client")).status_code == 202
    billed = await example.wait_for_stage(run_id, "billed")
    return billed["invoice_id"]


async def finalize(example: Example, invoice_id: str) -> dict[str, Any]:
    response = await example.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert response.status_code == 200, response.text
    return response.json()


async def invoice(example: Example, invoice_id: str) -> dict[str, Any]:
    response = await example.stack.get(f"/v1/invoices/{invoice_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def with_payment_terms(example: Example, terms: dict[str, Any]) -> Example:
    """A new customer with the example's engagement under these payment terms."""
    customer = await example.stack.post("/v1/customers", {"name": "Globex", "currency": "USD"})
    assert customer.status_code == 201, customer.text
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    body = {**platform_migration(customer.json()["id"], *people), "payment_terms": terms}
    engagement = await example.stack.post("/v1/engagements", body)
    assert engagement.status_code == 201, engagement.text
    assert engagement.json()["payment_terms"] == terms
    return Example(example.stack, example.people, customer.json(), engagement.json())


def sequence(number: str) -> tuple[int, int]:
    match = NUMBER.fullmatch(number)
    assert match is not None, number
    return int(match[1]), int(match[2])


def finalized_at(document: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(document["finalized_at"].replace("Z", "+00:00"))


def counts(example: Example) -> dict[str, int]:
    """Rows that a refused request must not add, and numbers it must not take."""
    with example.stack.sessions() as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (CreditNote, CreditNoteLine, AuditEvent)
        }
        taken = session.scalar(select(func.coalesce(func.sum(DocumentSequence.last), 0)))
        return {**rows, "numbers_taken": taken or 0}


# ---- finalize ----------------------------------------------------------------------------------


async def test_finalizing_numbers_dates_and_freezes_the_invoice_and_later_lines_go_to_a_new_draft(
    example: Example,
):
    invoice_id = await bill(example, "phase-1")
    draft = await invoice(example, invoice_id)
    assert (draft["status"], draft["number"], draft["issued_on"], draft["due_on"]) == (
        "draft",
        None,
        None,
        None,
    )

    final = await finalize(example, invoice_id)
    assert final["status"] == "finalized"
    year, _ = sequence(final["number"])
    at = finalized_at(final)
    issued = at.astimezone(NEW_YORK).date()  # the engagement calendar's local date
    assert (year, final["issued_on"]) == (issued.year, issued.isoformat())
    # No payment terms on the engagement: net 30 days.
    assert final["due_on"] == (at + timedelta(days=30)).astimezone(NEW_YORK).date().isoformat()
    assert final["total_minor"] == sum(line["amount_minor"] for line in final["lines"]) == 2_700_000
    assert final["lines"] == draft["lines"]

    again = await example.stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert (again.status_code, again.json()) == (200, final)

    phase_2 = await bill(example, "phase-2", {"error_rate_pct": "0.3"})
    assert phase_2 != invoice_id
    new_draft = await invoice(example, phase_2)
    assert new_draft["status"] == "draft"
    assert {line["milestone_id"] for line in new_draft["lines"]} == {example.milestone("phase-2")}
    assert new_draft["total_minor"] == 4_000_000 - 400_000
    assert await invoice(example, invoice_id) == final

    trail = (
        await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    ).json()["items"]
    finalized = [e for e in trail if e["kind"] == "invoice_finalized"]
    assert [(e["actor"], e["data"]["number"], e["data"]["total_minor"]) for e in finalized] == [
        ("admin", final["number"], 2_700_000)
    ]
    listed = (await example.stack.get(f"/v1/customers/{example.customer['id']}/invoices")).json()
    assert listed["next_cursor"] is None
    assert [(i["id"], i["status"]) for i in listed["items"]] == [
        (invoice_id, "finalized"),
        (phase_2, "draft"),
    ]


async def test_due_dates_follow_each_engagements_payment_terms_and_numbers_are_consecutive(
    example: Example,
):
    business = await with_payment_terms(example, {"business_days": 10})
    elapsed = await with_payment_terms(example, {"duration": "P30D"})
    first = await finalize(business, await bill(business))
    second = await finalize(elapsed, await bill(elapsed))

    (year_1, n_1), (year_2, n_2) = sequence(first["number"]), sequence(second["number"])
    assert year_1 == year_2 and n_2 == n_1 + 1

    calendar = calendar_of(business.engagement["approval"]["calendar"])
    issued = datetime.fromisoformat(first["issued_on"]).date()
    due = datetime.fromisoformat(first["due_on"]).date()
    days = [issued + timedelta(days=d) for d in range(1, (due - issued).days + 1)]
    assert sum(is_business_day(day, calendar) for day in days) == 10
    assert is_business_day(due, calendar)

    at = finalized_at(second)
    assert second["due_on"] == (at + timedelta(days=30)).astimezone(NEW_YORK).date().isoformat()


async def test_finalizing_an_empty_draft_is_a_conflict_and_changes_nothing(example: Example):
    with example.stack.sessions.begin() as session:
        empty = Invoice(
            id=new_id("inv"),
            customer_id=example.customer["id"],
            currency="USD",
            draft_key=f"{example.customer['id']}:USD",
        )
        session.add(empty)
    before = counts(example)
    response = await example.stack.post(f"/v1/invoices/{empty.id}/finalize", None)
    assert assert_problem(response, 409)["type"].endswith("invoice-empty")
    body = await invoice(example, empty.id)
    assert (body["status"], body["number"], body["lines"]) == ("draft", None, [])
    assert counts(example) == before


async def test_finalizing_is_for_admin_only_and_unknown_invoices_are_not_found(example: Example):
    invoice_id = await bill(example)
    lead = example.token("lead")
    assert_problem(await example.stack.post(f"/v1/invoices/{invoice_id}/finalize", None, lead), 403)
    assert_problem(await example.stack.post("/v1/invoices/inv_nope/finalize", None), 404)
    assert (await invoice(example, invoice_id))["status"] == "draft"


# ---- credit notes ------------------------------------------------------------------------------


async def credit(
    example: Example, invoice_id: str, body: Any, key: str | None = "c-1", token: str | None = None
):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await example.stack.post(
        f"/v1/invoices/{invoice_id}/credit-notes", body, token, headers=headers
    )


async def finalized_invoice(example: Example) -> dict[str, Any]:
    return await finalize(example, await bill(example))


def milestone_line(document: dict[str, Any]) -> dict[str, Any]:
    return next(line for line in document["lines"] if line["kind"] == "milestone")


async def test_a_credit_note_is_numbered_negative_and_shown_on_its_invoice_and_customer(
    example: Example,
):
    final = await finalized_invoice(example)
    line = milestone_line(final)
    body = {
        "reason": "Cutover plan delivered late",
        "lines": [{"invoice_line_id": line["id"], "amount_minor": 50_000}],
    }
    response = await credit(example, final["id"], body)
    assert response.status_code == 201, response.text
    note = response.json()
    assert re.fullmatch(r"TG-CN-\d{4}-\d{6}", note["number"])
    assert {k: note[k] for k in ("invoice_id", "status", "currency", "total_minor", "reason")} == {
        "invoice_id": final["id"],
        "status": "issued",
        "currency": "USD",
        "total_minor": -50_000,
        "reason": "Cutover plan delivered late",
    }
    assert note["source"] == "manual"
    assert [
        (cl["invoice_line_id"], cl["amount_minor"], cl["description"]) for cl in note["lines"]
    ] == [(line["id"], -50_000, f"Credit: {line['description']}")]
    assert (await example.stack.get(f"/v1/credit-notes/{note['id']}")).json() == note

    shown = await invoice(example, final["id"])
    assert [(c["id"], c["number"], c["total_minor"]) for c in shown["credit_notes"]] == [
        (note["id"], note["number"], -50_000)
    ]
    assert shown["total_minor"] == final["total_minor"]  # the invoice itself never changes
    listed = await example.stack.get(f"/v1/customers/{example.customer['id']}/credit-notes")
    assert [c["id"] for c in listed.json()["items"]] == [note["id"]]

    trail = (
        await example.stack.get(f"/v1/milestones/{example.milestone('phase-1')}/audit?limit=200")
    ).json()["items"]
    issued = [e for e in trail if e["kind"] == "credit_note_issued"]
    assert [(e["actor"], e["data"]["number"], e["data"]["reason"]) for e in issued] == [
        ("admin", note["number"], "Cutover plan delivered late")
    ]

    before = counts(example)
    replay = await credit(example, final["id"], body)
    assert (replay.status_code, replay.json()) == (200, note)
    changed = {**body, "reason": "Something else"}
    assert assert_problem(await credit(example, final["id"], changed), 422)["type"].endswith(
        "idempotency-key-reused"
    )
    assert counts(example) == before


async def test_every_refused_credit_note_leaves_everything_unchanged(example: Example):
    final = await finalized_invoice(example)
    line, retention = milestone_line(final), final["lines"][1]
    draft_id = await bill(example, "phase-2", {"error_rate_pct": "0.3"})
    draft_line = milestone_line(await invoice(example, draft_id))
    ok_line = {"invoice_line_id": line["id"], "amount_minor": 1_000}
    cases: list[tuple[str, Any, int, str | None]] = [
        (final["id"], {"reason": "r", "lines": []}, 422, "lines"),
        (final["id"], {"lines": [ok_line]}, 422, "reason"),
        (final["id"], {"reason": "  ", "lines": [ok_line]}, 422, "reason"),
        (final["id"], {"reason": "r", "lines": [{**ok_line, "amount_minor": 0}]}, 422, "lines"),
        (final["id"], {"reason": "r", "lines": [{**ok_line, "amount_minor": -5}]}, 422, "lines"),
        (final["id"], {"reason": "r", "lines": [{**ok_line, "amount_minor": "5"}]}, 422, "lines"),
        (final["id"], {"reason": "r", "lines": [ok_line], "extra": 1}, 422, "extra"),
        (
            final["id"],
            {"reason": "r", "lines": [{**ok_line, "invoice_line_id": "lin_x"}]},
            422,
            None,
        ),
        (
            final["id"],
            {"reason": "r", "lines": [{"invoice_line_id": draft_line["id"], "amount_minor": 1}]},
            422,
            None,
        ),
        (
            final["id"],
            {"reason": "r", "lines": [{**ok_line, "amount_minor": 3_000_001}]},
            422,
            None,
        ),
        (
            final["id"],
            {"reason": "r", "lines": [{**ok_line, "amount_minor": 2_000_000}] * 2},
            422,
            None,
        ),
        (
            final["id"],
            {"reason": "r", "lines": [{"invoice_line_id": retention["id"], "amount_minor": 1}]},
            422,
            None,
        ),
        (
            draft_id,
            {"reason": "r", "lines": [{**ok_line, "invoice_line_id": draft_line["id"]}]},
            409,
            None,
        ),
        ("inv_nope", {"reason": "r", "lines": [ok_line]}, 404, None),
    ]
    before = counts(example)
    for n, (invoice_id, body, status, field) in enumerate(cases):
        assert_problem(await credit(example, invoice_id, body, key=f"bad-{n}"), status, field)
    assert_problem(
        await credit(example, final["id"], {"reason": "r", "lines": [ok_line]}, None), 400
    )
    lead = example.token("lead")
    response = await credit(example, final["id"], {"reason": "r", "lines": [ok_line]}, "k", lead)
    assert_problem(response, 403)
    assert counts(example) == before
    assert (await invoice(example, final["id"]))["credit_notes"] == []


async def test_credits_across_notes_never_exceed_what_the_line_invoiced(example: Example):
    final = await finalized_invoice(example)
    line = milestone_line(final)

    def body(amount: int) -> dict[str, Any]:
        return {
            "reason": "Scope cut",
            "lines": [{"invoice_line_id": line["id"], "amount_minor": amount}],
        }

    first = await credit(example, final["id"], body(2_000_000), key="one")
    assert first.status_code == 201, first.text
    before = counts(example)
    problem = assert_problem(await credit(example, final["id"], body(1_000_001), key="two"), 422)
    assert "at most 10,000.00 USD" in problem["detail"]
    assert counts(example) == before
    rest = await credit(example, final["id"], body(1_000_000), key="three")
    assert rest.status_code == 201, rest.text
    assert sequence(rest.json()["number"].replace("TG-CN", "TG"))[1] == (
        sequence(first.json()["number"].replace("TG-CN", "TG"))[1] + 1
    )
    assert_problem(await credit(example, final["id"], body(1), key="four"), 422)
    notes = (await invoice(example, final["id"]))["credit_notes"]
    assert sum(n["total_minor"] for n in notes) == -line["amount_minor"]
