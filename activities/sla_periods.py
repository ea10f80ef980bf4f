"""Judging an ended SLA period in one transaction: ``met`` when a run billed it, ``not_met``
otherwise, with the milestone's service credit as a negative ``service_credit`` line on the
customer's current draft, the judgement row and its audit event.

Idempotent: the engagement row is locked first (as a trigger locks it, so a late report and the
judgement never both win), a judged period answers what its judgement recorded, and the credit
line's (run_id, kind) key makes a second posting impossible anyway. The credit is posted whole
even when it takes the draft below zero: the customer is owed it whatever else is billed.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.invoicing import open_draft
from db.audit import append_event
from db.models import Engagement, InvoiceLine, Milestone, new_id
from db.sla_periods import SlaJudgement, SlaOutcome
from domain.money import format_minor
from domain.sla_judgement import PeriodStatus
from domain.times import iso
from services.sla_judgements import sla_periods_due, verdict_of
from workflows.sla_period import Judged, JudgeInput, JudgeRequest, judge_id
from workflows.sla_period_schedule import SlaDueRequest


class SlaPeriodActivities:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def all(self) -> list:
        return [self.judge_sla_period, self.sla_periods_due]

    @activity.defn(name="sla_periods_due")
    def sla_periods_due(self, req: SlaDueRequest) -> list[JudgeInput]:
        with self._sessions() as session:
            return sla_periods_due(session, datetime.fromisoformat(req.at), req.limit)

    @activity.defn(name="judge_sla_period")
    def judge_sla_period(self, req: JudgeRequest) -> Judged:
        with self._sessions() as session:
            judged = judge_period(session, req)
            session.commit()
        return judged


def judge_period(session: Session, req: JudgeRequest) -> Judged:
    milestone = session.get_one(Milestone, req.milestone_id)
    engagement = session.scalars(
        select(Engagement)
        .where(Engagement.id == milestone.engagement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    done = session.get(SlaJudgement, (milestone.id, req.period), populate_existing=True)
    if done is not None:
        return _result(done, already_judged=True)
    status, billed_by = verdict_of(session, milestone.id, req.period)
    if status == PeriodStatus.PENDING:
        return Judged(milestone.id, req.period, str(status))
    at = datetime.fromisoformat(req.at)
    row = SlaJudgement(
        milestone_id=milestone.id,
        period=req.period,
        engagement_id=engagement.id,
        outcome=SlaOutcome.MET if status == PeriodStatus.MET else SlaOutcome.NOT_MET,
        run_id=billed_by,
        reason=f"billed by run {billed_by}"
        if billed_by
        else "no passing report before the period was judged",
        credit_minor=0,
        judged_at=at,
        judged_by=req.actor,
    )
    if row.outcome == SlaOutcome.NOT_MET and milestone.service_credit_minor:
        line = _credit_line(session, engagement, milestone, req.period)
        row.credit_minor, row.invoice_id, row.line_id = (
            -line.amount_minor,
            line.invoice_id,
            line.id,
        )
    session.add(row)
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=req.actor,
        kind=f"sla_period_{row.outcome}",
        milestone_id=milestone.id,
        run_id=billed_by,
        at=at,
        data={
            "milestone": milestone.key,
            "period": req.period,
            "reason": row.reason,
            "credit_minor": row.credit_minor,
            "currency": engagement.currency,
            "invoice_id": row.invoice_id,
            "line_id": row.line_id,
        },
        dedupe_key=f"{judge_id(milestone.id, req.period)}:judged",
    )
    return _result(row)


def _credit_line(
    session: Session, engagement: Engagement, milestone: Milestone, period: str
) -> InvoiceLine:
    credit = milestone.service_credit_minor or 0
    invoice = open_draft(session, engagement.customer_id, engagement.currency, -credit)
    line = InvoiceLine(
        id=new_id("lin"),
        invoice_id=invoice.id,
        kind="service_credit",
        run_id=judge_id(milestone.id, period),
        milestone_id=milestone.id,
        amount_minor=-credit,
        description=f"Service credit: {milestone.name} ({milestone.key}), SLA period {period} "
        f"not met",
        details={
            "period": period,
            "service_credit_minor": credit,
            "credit": format_minor(credit, engagement.currency),
        },
    )
    session.add(line)
    invoice.total_minor -= credit
    session.flush()
    return line


def _result(row: SlaJudgement, already_judged: bool = False) -> Judged:
    return Judged(
        milestone_id=row.milestone_id,
        period=row.period,
        status=row.outcome,
        run_id=row.run_id,
        credit_minor=row.credit_minor,
        invoice_id=row.invoice_id,
        line_id=row.line_id,
        judged_at=iso(row.judged_at),
        already_judged=already_judged,
    )
