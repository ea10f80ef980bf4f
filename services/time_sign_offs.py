"""Timesheet sign-off (T&M terms with ``approval: true``): a period's close records a
``timesheet`` run with what the period would bill, and the ``TimesheetSignOff`` workflow collects
the engagement's dual sign-off before the period bills.

While the run is open the period takes no entries (an adjustment books into the next open
period), so the timesheet billed is the one signed. A rejected or expired sign-off leaves the
period open; the monthly schedule then leaves it to an admin to close again (a new run).
"""

import contextlib
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import value_to_type
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.audit import append_event
from db.models import Engagement, Run
from db.time_entries import TimePeriod, TimeTerms
from services.engagements import approval_policy
from services.run_signers import signers
from services.time_bills import entries_sha256, period_bill, period_entries
from services.time_periods import open_sign_off
from workflows.time_sign_off import TimesheetInput, TimesheetSignOff, search_attributes

RUN_KIND = "timesheet"


def request_sign_off(
    session: Session,
    engagement: Engagement,
    terms: TimeTerms,
    period: TimePeriod,
    actor: str,
    at: datetime,
) -> TimesheetInput:
    """Record the period's sign-off run (once: an open one is answered again) with what the
    period bills now; the caller holds the period's row lock and commits."""
    running = open_sign_off(session, period)
    if running is not None:
        return value_to_type(TimesheetInput, running.snapshot)
    rows = period_entries(session, engagement.id, period.period)
    bill = period_bill(session, engagement, terms, period.period, rows).bill
    earlier = session.scalar(
        select(func.count())
        .select_from(Run)
        .where(Run.id.startswith(f"{RUN_KIND}:{engagement.id}:{period.period}:"))
    )
    inp = TimesheetInput(
        run_id=f"{RUN_KIND}:{engagement.id}:{period.period}:{(earlier or 0) + 1}",
        engagement_id=engagement.id,
        customer_id=engagement.customer_id,
        engagement_name=engagement.name,
        period=period.period,
        currency=engagement.currency,
        policy=approval_policy(engagement),
        entry_count=len(rows),
        entries_sha256=entries_sha256(rows),
        gross_minor=bill.gross_minor,
        delay_minor=bill.delay_minor,
        requested_by=actor,
    )
    session.add(
        Run(
            id=inp.run_id,
            kind=RUN_KIND,
            milestone_id=None,
            engagement_id=engagement.id,
            trigger_id=None,
            snapshot=asdict(inp),
            created_at=at,
        )
    )
    session.add_all(signers(inp.run_id, inp.policy))
    period.sign_off_run_id = inp.run_id
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=actor,
        kind="time_period_sign_off_requested",
        run_id=inp.run_id,
        at=at,
        data={
            "period": period.period,
            "entry_count": inp.entry_count,
            "entries_sha256": inp.entries_sha256,
            "gross_minor": inp.gross_minor,
            "delay_minor": inp.delay_minor,
        },
        dedupe_key=f"{inp.run_id}:requested",
    )
    return inp


async def start_sign_off(client: Client, task_queue: str, inp: TimesheetInput) -> None:
    """Start a recorded sign-off the close never started (the reconciler's way in)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            TimesheetSignOff.run,
            inp,
            id=inp.run_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(inp),
            static_summary=f"timesheet sign-off {inp.period} of {inp.engagement_name}",
        )
