"""JudgeSlaPeriod and the hourly pass on the time-skipping server with the real activities, on
both databases: a month nobody reported a passing uptime for is judged not_met with its service
credit on the customer's draft, a billed month is judged met, and judging again changes nothing.
"""

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from api.schemas import TriggerIn
from db.models import AuditEvent, InvoiceLine, Milestone
from db.sla_periods import SlaJudgement
from domain.periods import PeriodKind, bounds, period_containing
from services.runs import start_run
from services.sla_judgements import start_judgement
from services.triggers import accept_trigger
from tests.workflows.conftest import ADMIN, Harness
from workflows.contracts import RunStatus
from workflows.sla_period import Judged, JudgeInput, JudgeSlaPeriod, judge_id
from workflows.sla_period_schedule import JudgeDueInput, JudgeDueSlaPeriods

ZONE = "America/New_York"  # the example engagement's calendar
UPTIME_SLA = {
    "key": "uptime-sla",
    "name": "Platform uptime SLA",
    "kind": "sla",
    "period": "monthly",
    "fee_minor": 150_000,
    "service_credit_minor": 25_000,
    "report_grace_days": 0,
    "trigger": "automatic",
    "acceptance_criteria": [{"id": "up", "metric": "uptime_pct", "op": ">=", "threshold": "99.9"}],
}


def month_before(period: str) -> str:
    start, _ = bounds(PeriodKind.MONTHLY, period, ZONE)
    return period_containing(PeriodKind.MONTHLY, start - timedelta(hours=1), ZONE)


async def sla_since(harness: Harness, months: int) -> tuple[str, list[str]]:
    """A fresh engagement whose monthly SLA was created ``months`` months ago; its id and the
    ended months, oldest first."""
    harness.engage(milestones=[UPTIME_SLA])
    milestone_id = harness.milestone_id("uptime-sla")
    now = await harness.env.get_current_time()
    ended = [month_before(period_containing(PeriodKind.MONTHLY, now, ZONE))]
    for _ in range(months - 1):
        ended.insert(0, month_before(ended[0]))
    created = bounds(PeriodKind.MONTHLY, ended[0], ZONE)[0] + timedelta(days=1)
    with harness.sessions() as session:
        session.execute(
            update(Milestone).where(Milestone.id == milestone_id).values(created_at=created)
        )
        session.commit()
    return milestone_id, ended


async def report(harness: Harness, period: str, uptime: str) -> RunStatus:
    body = TriggerIn(source="test", period=period, kpis={"uptime_pct": uptime})
    with harness.sessions() as session:
        accepted = accept_trigger(
            session,
            ADMIN,
            harness.milestone_id("uptime-sla"),
            f"up-{period}",
            body.model_dump(mode="json"),
        )
    handle = await start_run(harness.env.client, harness.task_queue, accepted.run)
    return await harness.finish(handle)


async def judge(harness: Harness, milestone_id: str, period: str) -> Judged:
    await start_judgement(
        harness.env.client, harness.task_queue, JudgeInput(milestone_id, period, "admin")
    )
    handle = harness.env.client.get_workflow_handle_for(
        JudgeSlaPeriod.run, judge_id(milestone_id, period)
    )
    judged = await handle.result()
    await harness.replay(handle)
    return judged


def credit_lines(harness: Harness, milestone_id: str) -> list[tuple[str, int, str]]:
    with harness.sessions() as session:
        lines = session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.milestone_id == milestone_id, InvoiceLine.kind == "service_credit"
            )
        )
        return [(line.details["period"], line.amount_minor, line.description) for line in lines]


async def test_a_missed_month_is_not_met_with_its_credit_and_a_billed_month_is_met(
    harness: Harness,
):
    milestone_id, (missed, billed) = await sla_since(harness, months=2)
    assert (await report(harness, missed, "99.5")).stage == "rejected"  # a failing report
    run = await report(harness, billed, "99.95")
    assert run.stage == "billed"

    not_met = await judge(harness, milestone_id, missed)
    assert (not_met.status, not_met.credit_minor, not_met.run_id) == ("not_met", 25_000, None)
    met = await judge(harness, milestone_id, billed)
    assert (met.status, met.credit_minor, met.run_id) == ("met", 0, run.run_id)
    assert credit_lines(harness, milestone_id) == [
        (
            missed,
            -25_000,
            f"Service credit: Platform uptime SLA (uptime-sla), SLA period {missed} not met",
        )
    ]

    again = await judge(harness, milestone_id, missed)
    assert again.already_judged and again.line_id == not_met.line_id
    assert len(credit_lines(harness, milestone_id)) == 1
    with harness.sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.milestone_id == milestone_id)
        ).all()
        judged = [(e.kind, e.data["period"]) for e in events if e.kind.startswith("sla_period")]
        assert judged == [("sla_period_not_met", missed), ("sla_period_met", billed)]
        [event] = [e for e in events if e.kind == "sla_period_not_met"]
        assert event.data["credit_minor"] == 25_000
        assert event.data["reason"] == "no passing report before the period was judged"


async def test_the_hourly_pass_judges_every_ended_month_once(harness: Harness):
    milestone_id, ended = await sla_since(harness, months=3)
    run = JudgeDueSlaPeriods.run
    # Real time: no month may end between the two passes through skipping.
    with harness.env.auto_time_skipping_disabled():
        first = await harness.env.client.start_workflow(
            run, JudgeDueInput(), id=f"due-{uuid.uuid4()}", task_queue=harness.task_queue
        )
        result = await first.result()
        again = await harness.env.client.execute_workflow(
            run, JudgeDueInput(), id=f"due-{uuid.uuid4()}", task_queue=harness.task_queue
        )
    await harness.replay(first)
    mine = f"sla-period:{milestone_id}:"
    assert [wid for wid in result.judged if wid.startswith(mine)] == [
        judge_id(milestone_id, period) for period in ended
    ]
    assert [wid for wid in again.judged if wid.startswith(mine)] == []
    with harness.sessions() as session:
        rows = session.scalars(
            select(SlaJudgement).where(SlaJudgement.milestone_id == milestone_id)
        ).all()
        assert sorted((r.period, r.outcome, r.credit_minor) for r in rows) == [
            (period, "not_met", 25_000) for period in ended
        ]
    assert sorted(p for p, _, _ in credit_lines(harness, milestone_id)) == ended
