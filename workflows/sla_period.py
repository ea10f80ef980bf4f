"""Judging one ended SLA period of a milestone: one activity, one transaction.

The workflow id is ``sla-period:<milestone>:<period>``; starting it again while it runs joins the
running judgement (the admin endpoint and the hourly schedule use the same id), and after it has
judged a new run finds the judgement recorded and changes nothing.
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller

_activity = activity_caller()


@dataclass
class JudgeInput:
    milestone_id: str
    period: str  # 2026-11, 2026-W47 or 2026-Q4, of the milestone's kind
    actor: str


@dataclass
class JudgeRequest:
    """The activity's input: the workflow's plus the instant that dates the judgement."""

    milestone_id: str
    period: str
    actor: str
    at: str


@dataclass
class Judged:
    milestone_id: str
    period: str
    status: str  # met | not_met | pending (a run of the period is still open: judged later)
    run_id: str | None = None
    credit_minor: int = 0
    invoice_id: str | None = None
    line_id: str | None = None
    judged_at: str | None = None
    already_judged: bool = False


def judge_id(milestone_id: str, period: str) -> str:
    """The judgement workflow's id, and its service credit line's run id."""
    return f"sla-period:{milestone_id}:{period}"


@workflow.defn
class JudgeSlaPeriod:
    @workflow.run
    async def run(self, inp: JudgeInput) -> Judged:
        request = JudgeRequest(inp.milestone_id, inp.period, inp.actor, iso(workflow.now()))
        return await _activity(
            "judge_sla_period",
            request,
            Judged,
            f"judge SLA period {inp.period}: met, not_met (with its service credit) or pending",
        )
