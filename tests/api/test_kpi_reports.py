"""KPI reports about a billed bonus over real HTTP: a report that breaks the bonus's KPI claws it
back, with the report as evidence; idempotency as for triggers; and every refusal stores nothing.

(The window passing, and reports 30 days on, are workflow tests: this server's clock is real.)"""

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import KpiReport
from tests.api.problems import assert_problem
from tests.api.test_bonus_and_success_fees import LAUNCH_BONUS, engage, milestone_view
from tests.conftest_stack import Example

WATCH_DEADLINE = 30.0


def reports(example: Example) -> int:
    with example.stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(KpiReport)) or 0


async def post_report(
    example: Example,
    milestone_id: str,
    body: Any,
    token: str | None = None,
    idem: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": idem or str(uuid.uuid4())} if idem != "" else {}
    path = f"/v1/milestones/{milestone_id}/kpi-reports"
    return await example.stack.post(path, body, token, headers=headers)


async def clawback(example: Example, milestone_id: str) -> dict[str, Any]:
    response = await example.stack.get(f"/v1/milestones/{milestone_id}/clawback")
    assert response.status_code == 200, response.text
    return response.json()


async def watch_until(
    example: Example, milestone_id: str, ready: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The watch's view once `ready` holds for it, polled for at most WATCH_DEADLINE seconds.

    The watch acts after the API answered 202, and its view follows the workflow: a report is
    listed as soon as it is checked, before any clawback it causes, so a test waits for the
    very state it asserts on.
    """
    seen: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(WATCH_DEADLINE):
            while True:
                response = await example.stack.get(f"/v1/milestones/{milestone_id}/clawback")
                if response.status_code == 200:
                    seen = response.json()
                    if ready(seen):
                        return seen
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"the watch of {milestone_id} never {what} within {WATCH_DEADLINE}s; last seen {seen}"
        ) from None


async def watched(example: Example, milestone_id: str, reports: int = 0) -> dict[str, Any]:
    """The watch's view once it is running and has checked `reports` reports."""
    return await watch_until(
        example,
        milestone_id,
        lambda view: len(view["reports"]) >= reports,
        f"checked {reports} reports",
    )


async def billed_bonus(example: Example) -> str:
    """The launch bonus, triggered at an error rate of 0.4% and billed: its watch is running."""
    await engage(example, LAUNCH_BONUS)
    response = await example.trigger("launch-bonus", {"kpis": {"error_rate_pct": "0.4"}})
    assert response.status_code == 202, response.text
    await example.wait_for_stage(response.json()["run_id"], "billed")
    milestone_id = example.milestone("launch-bonus")
    await watched(example, milestone_id)
    return milestone_id


async def test_a_report_that_breaks_the_kpi_claws_the_bonus_back_with_the_report_as_evidence(
    example: Example,
):
    milestone_id = await billed_bonus(example)
    status = await clawback(example, milestone_id)
    assert (status["stage"], status["billed_minor"], status["percent"]) == (
        "watching",
        500_000,
        "100",
    )

    kept = await post_report(example, milestone_id, {"kpis": {"error_rate_pct": "0.3"}})
    assert kept.status_code == 202, kept.text
    assert kept.json()["watch_id"] == status["watch_id"]
    assert kept.json()["status_url"].endswith(f"/v1/milestones/{milestone_id}/clawback")
    await watched(example, milestone_id, 1)
    dashboard = await example.upload(b"error rate 0.9% over 30 days", "dashboard.png")
    body = {
        "kpis": {"error_rate_pct": "0.9"},
        "evidence_ids": [dashboard["id"]],
        "source": "monitoring",
        "note": "30 days after launch",
    }
    breach = await post_report(example, milestone_id, body, idem="month-1")
    assert breach.status_code == 202, breach.text

    status = await watch_until(
        example, milestone_id, lambda view: view["stage"] != "watching", "ended"
    )
    assert [(r["report_id"], r["outcome"]) for r in status["reports"]] == [
        (kept.json()["report_id"], "ok"),
        (breach.json()["report_id"], "breach"),
    ]
    assert (status["stage"], status["clawback_minor"]) == ("clawed_back", 500_000)
    invoice = (await example.stack.get(f"/v1/invoices/{status['invoice_id']}")).json()
    credit = next(line for line in invoice["lines"] if line["kind"] == "credit")
    assert (credit["id"], credit["amount_minor"]) == (status["invoice_line_id"], -500_000)
    assert credit["details"]["breach"] == "error_rate_pct 0.9 breaks error_rate_pct <= 0.5"
    assert invoice["total_minor"] == sum(line["amount_minor"] for line in invoice["lines"])
    events = (await example.stack.get(f"/v1/milestones/{milestone_id}/audit?limit=200")).json()[
        "items"
    ]
    issued = next(e for e in events if e["kind"] == "clawback_issued")
    assert issued["evidence"] == [{"id": dashboard["id"], "sha256": dashboard["sha256"]}]
    assert issued["data"]["report"]["note"] == "30 days after launch"
    checked = [e["data"]["outcome"] for e in events if e["kind"] == "kpi_report_checked"]
    assert checked == ["ok", "breach"]

    again = await post_report(example, milestone_id, body, idem="month-1")
    assert again.status_code == 200, again.text
    assert again.json() == breach.json()
    before = reports(example)
    late = await post_report(example, milestone_id, {"kpis": {"error_rate_pct": "2"}})
    assert_problem(late, 409)
    assert reports(example) == before


async def test_a_report_without_the_metric_is_recorded_as_ignored(example: Example):
    milestone_id = await billed_bonus(example)

    response = await post_report(example, milestone_id, {"kpis": {"p95_latency_ms": "900"}})

    assert response.status_code == 202, response.text
    status = await watched(example, milestone_id, 1)
    assert status["stage"] == "watching"
    assert status["reports"][0]["outcome"] == "ignored"
    assert status["reports"][0]["detail"] == "no value reported for error_rate_pct"


@pytest.mark.parametrize(
    ("body", "idem", "status", "field"),
    [
        ({"kpis": {"error_rate_pct": "0.9"}}, "", 400, None),
        ({"kpis": {"error_rate_pct": "0.9"}}, "k" * 256, 400, None),
        ({"kpis": {"error_rate_pct": 0.9}}, None, 422, "kpis.error_rate_pct"),
        ({"kpis": {"error_rate_pct": "1e3"}}, None, 422, "kpis.error_rate_pct"),
        ({"kpis": {"error_rate_pct": "lots"}}, None, 422, "kpis.error_rate_pct"),
        ({"kpis": {}}, None, 422, "kpis"),
        ({}, None, 422, "kpis"),
        ({"kpis": {"error_rate_pct": "0.9"}, "colour": "red"}, None, 422, "colour"),
        ({"kpis": {"error_rate_pct": "0.9"}, "evidence_ids": ["evd_nope"]}, None, 422, "evidence"),
    ],
)
async def test_a_bad_report_is_refused_and_stores_nothing(
    example: Example, body: dict[str, Any], idem: str | None, status: int, field: str | None
):
    milestone_id = await billed_bonus(example)
    before = reports(example)

    assert_problem(await post_report(example, milestone_id, body, idem=idem), status, field)

    assert reports(example) == before
    assert (await clawback(example, milestone_id))["reports"] == []


async def test_reusing_a_key_with_another_body_is_refused(example: Example):
    milestone_id = await billed_bonus(example)
    first = await post_report(example, milestone_id, {"kpis": {"error_rate_pct": "0.1"}}, idem="k")
    assert first.status_code == 202, first.text
    before = reports(example)

    again = await post_report(example, milestone_id, {"kpis": {"error_rate_pct": "0.2"}}, idem="k")

    assert_problem(again, 422)
    assert reports(example) == before
    status = await watched(example, milestone_id, 1)
    assert [r["report_id"] for r in status["reports"]] == [first.json()["report_id"]]


async def test_reports_only_reach_a_running_watch(example: Example):
    await engage(example, LAUNCH_BONUS)
    bonus, standard = example.milestone("launch-bonus"), example.milestone("phase-1")
    body = {"kpis": {"error_rate_pct": "0.9"}}
    before = reports(example)

    assert_problem(await post_report(example, "ms_nope", body), 404)
    assert_problem(await post_report(example, standard, body), 409)
    assert_problem(await post_report(example, bonus, body), 409)  # not billed: not watched yet

    assert reports(example) == before
    assert_problem(await example.stack.get("/v1/milestones/ms_nope/clawback"), 404)
    assert_problem(await example.stack.get(f"/v1/milestones/{standard}/clawback"), 404)
    assert_problem(await example.stack.get(f"/v1/milestones/{bonus}/clawback"), 404)
    state = milestone_view(await example.refresh(), "launch-bonus")
    assert state["status"] == "pending"


async def test_only_the_admin_or_the_engagements_integration_token_may_report(example: Example):
    milestone_id = await billed_bonus(example)
    engagement_id = example.engagement["id"]
    own = await example.stack.post(f"/v1/engagements/{engagement_id}/integration-tokens", None)
    other_engagement = (await engage(example))["id"]
    other = await example.stack.post(f"/v1/engagements/{other_engagement}/integration-tokens", None)
    body = {"kpis": {"error_rate_pct": "0.2"}}
    before = reports(example)

    assert_problem(await post_report(example, milestone_id, body, example.token("client")), 403)
    assert_problem(await post_report(example, milestone_id, body, other.json()["token"]), 403)
    path = f"/v1/milestones/{milestone_id}/clawback"
    assert_problem(await example.stack.get(path, example.token("stranger")), 403)
    assert reports(example) == before

    accepted = await post_report(example, milestone_id, body, own.json()["token"])
    assert accepted.status_code == 202, accepted.text
    assert (await example.stack.get(path, example.token("client"))).status_code == 200
