"""SLA-conditional charges over real HTTP on both databases: an Alertmanager-shaped resolved
alert, signed with the standardwebhooks library, bills the month's SLA fee once; redelivery
replays; a second report for a billed month is 409; a failing month bills nothing and frees the
month for a corrected report; each month bills on its own; a period must be of the milestone's
kind."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from db.models import Run, new_id
from domain.periods import PeriodKind, period_containing
from tests.api.problems import assert_problem
from tests.api.test_sources import deliver, log, register
from tests.conftest_stack import Example

SAMPLE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "sources" / "alertmanager-webhook-v4.json"
    ).read_text()
)
UPTIME = {"id": "uptime", "metric": "uptime_pct", "op": ">=", "threshold": "99.9"}


def alert(period: str, uptime: str) -> bytes:
    """Alertmanager's resolved SLO group for ``period`` reporting ``uptime``."""
    payload = json.loads(json.dumps(SAMPLE))
    payload["commonAnnotations"].update(period=period, uptime=uptime)
    return json.dumps(payload).encode()


def hosting(example: Example, milestones: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "customer_id": example.customer["id"],
        "name": "Managed hosting",
        "currency": "USD",
        "approval": {
            "roles": {"client_ap": [example.people["client"]["id"]]},
            "calendar": {"timezone": "Europe/Berlin"},
        },
        "milestones": milestones,
    }


async def sla(example: Example) -> Example:
    """The example's people and customer under a hosting engagement: a monthly SLA of 1,500.00
    billed automatically when the month's uptime is at least 99.9%."""
    milestone = {
        "key": "uptime-sla",
        "name": "Platform uptime SLA",
        "kind": "sla",
        "period": "monthly",
        "fee_minor": 150_000,
        "trigger": "automatic",
        "acceptance_criteria": [UPTIME],
    }
    response = await example.stack.post("/v1/engagements", hosting(example, [milestone]))
    assert response.status_code == 201, response.text
    engagement = response.json()
    assert [(m["kind"], m["period"]) for m in engagement["milestones"]] == [("sla", "monthly")]
    return Example(example.stack, example.people, example.customer, engagement)


async def monitoring(example: Example) -> dict[str, Any]:
    return await register(
        example,
        {
            "kind": "alertmanager",
            "name": "Uptime SLO",
            "alertname": "PlatformUptimeSLOMet",
            "milestone": "uptime-sla",
            "kpis": {"uptime_pct": "uptime"},
            "period": "period",
        },
    )


def period_runs(example: Example) -> list[tuple[str | None, str]]:
    with example.stack.sessions() as session:
        runs = session.query(Run).filter(Run.milestone_id == example.milestone("uptime-sla"))
        return sorted((run.period, run.stage) for run in runs)


async def test_a_signed_resolved_alert_bills_the_months_sla_fee_once(example: Example):
    example = await sla(example)
    source = await monitoring(example)
    # This month in the calendar's zone, so a trigger naming no period reports on it too.
    this = period_containing(PeriodKind.MONTHLY, datetime.now(UTC), "Europe/Berlin")
    passing = alert(this, "99.95")
    first = await deliver(example, source, passing, webhook_id="msg_nov")
    assert first.status_code == 202, first.text
    billed = await example.wait_for_stage(first.json()["run_id"], "billed")
    assert billed["period"] == this
    assert billed["amounts"]["gross_minor"] == 150_000

    again = await deliver(example, source, passing, webhook_id="msg_nov")
    assert (again.status_code, again.json()) == (202, first.json())
    second = await deliver(example, source, passing, webhook_id="msg_nov_again")
    assert assert_problem(second, 409)["type"].endswith("period-billed")
    posted = await example.trigger("uptime-sla", {"kpis": {"uptime_pct": "99.99"}})
    assert assert_problem(posted, 409)["type"].endswith("period-billed")  # default: this month

    invoice = (await example.stack.get(f"/v1/invoices/{billed['invoice_id']}")).json()
    [line] = [line for line in invoice["lines"] if line["kind"] == "milestone"]
    assert line["amount_minor"] == 150_000
    assert f"SLA period {this}" in line["description"]
    assert line["details"]["period"] == this
    audit = (
        await example.stack.get(f"/v1/engagements/{example.engagement['id']}/audit?limit=200")
    ).json()["items"]
    assert [e["data"]["period"] for e in audit if e["kind"] == "milestone_accepted"] == [this]
    assert [e["data"]["period"] for e in audit if e["kind"] == "trigger_received"] == [this]
    assert period_runs(example) == [(this, "billed")]
    with pytest.raises(IntegrityError), example.stack.sessions() as session:  # and the database
        session.add(
            Run(
                id=new_id("run"),
                milestone_id=example.milestone("uptime-sla"),
                engagement_id=example.engagement["id"],
                snapshot={},
                period=this,
            )
        )
        session.commit()
    assert [d["outcome"] for d in await log(example, source)] == ["accepted", "refused"]


async def test_a_failing_month_bills_nothing_and_a_corrected_report_may_bill_it(
    example: Example,
):
    example = await sla(example)
    source = await monitoring(example)
    failing = await deliver(example, source, alert("2026-10", "99.5"), webhook_id="msg_oct")
    assert failing.status_code == 202, failing.text
    rejected = await example.wait_for_stage(failing.json()["run_id"], "rejected")
    assert rejected["period"] == "2026-10"
    assert (rejected["outcome"], rejected["invoice_id"]) == ("criteria_failed", None)

    corrected = await deliver(example, source, alert("2026-10", "99.92"), webhook_id="msg_oct2")
    assert corrected.status_code == 202, corrected.text
    await example.wait_for_stage(corrected.json()["run_id"], "billed")
    november = await deliver(example, source, alert("2026-11", "99.99"), webhook_id="msg_nov")
    assert november.status_code == 202, november.text  # each period bills on its own
    await example.wait_for_stage(november.json()["run_id"], "billed")
    assert period_runs(example) == [
        ("2026-10", "billed"),
        ("2026-10", "rejected"),
        ("2026-11", "billed"),
    ]
    [milestone] = (await example.refresh())["milestones"]
    assert (milestone["status"], milestone["billed_minor"]) == ("accepted", 300_000)


async def test_a_period_must_be_one_of_the_milestones_kind_and_already_started(
    example: Example,
):
    terms = {"key": "sla", "name": "SLA", "kind": "sla", "fee_minor": 1, "trigger": "automatic"}
    for extra, message in (
        ({"acceptance_criteria": [UPTIME]}, "needs its period"),
        ({"period": "monthly"}, "machine-checkable criterion"),
        ({"period": "yearly", "acceptance_criteria": [UPTIME]}, "monthly"),
    ):
        refused = await example.stack.post("/v1/engagements", hosting(example, [terms | extra]))
        assert message in refused.text, refused.text
        assert refused.status_code == 422
    not_sla = await example.trigger("phase-1", {"period": "2026-11"})
    assert "is not an SLA" in assert_problem(not_sla, 422, "period")["detail"]
    example = await sla(example)
    for period, message in (
        ("2026-W47", "is billed monthly"),
        ("2026-13", "is billed monthly"),
        ("2099-01", "has not started yet"),
    ):
        response = await example.trigger("uptime-sla", {"period": period})
        assert message in assert_problem(response, 422, "period")["detail"]
    assert period_runs(example) == []
