"""Builds the Temporal worker: the milestone-run workflow and its activities."""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Interceptor, Worker

from activities.approval import ApprovalActivities
from activities.change_orders import ChangeOrderActivities
from activities.clawback import ClawbackActivities
from activities.closeout import CloseoutActivities
from activities.credit_notes import CreditNoteActivities
from activities.delivery import DeliveryActivities, FirstAttempts, Notifier
from activities.documents import DocumentActivities
from activities.encounter_sign_offs import EncounterSignOffActivities
from activities.encounters import EncounterActivities
from activities.errors import PermanentErrors
from activities.issued_documents import IssuedDocumentActivities
from activities.milestone_run import MilestoneRunActivities
from activities.reconcile import ReconcileActivities
from activities.run_ends import RunEndActivities
from activities.sla_periods import SlaPeriodActivities
from activities.step_log import StepLog
from activities.time_periods import TimePeriodActivities
from activities.time_sign_offs import TimesheetActivities, TimesheetStarts
from config import Settings
from services.notices import LinkSigning
from services.pdf.model import DocumentContext
from services.senders import DeliveryConfig
from telemetry import Tracing, tracing
from workflows.change_order import ChangeOrderApproval
from workflows.clawback_watch import ClawbackWatch
from workflows.closeout import EngagementCloseout
from workflows.delivery import (
    DeliverNotification,
    SweepNotifications,
    ensure_delivery_sweep_schedule,
)
from workflows.encounter_sign_off import EncounterSignOff
from workflows.encounters import BillEncounters
from workflows.invoicing import FinalizeDrafts, FinalizeInvoice, IssueCreditNote
from workflows.milestone_run import MilestoneRun
from workflows.reconcile import Reconcile, ensure_reconcile_schedule
from workflows.schedules import ensure_finalize_schedule
from workflows.sla_period import JudgeSlaPeriod
from workflows.sla_period_schedule import JudgeDueSlaPeriods, ensure_sla_periods_schedule
from workflows.time_period import CloseTimePeriod
from workflows.time_period_schedule import CloseDueTimePeriods, ensure_time_periods_schedule
from workflows.time_sign_off import TimesheetSignOff

WORKFLOWS = [
    MilestoneRun,
    FinalizeInvoice,
    FinalizeDrafts,
    IssueCreditNote,
    EngagementCloseout,
    ChangeOrderApproval,
    ClawbackWatch,
    Reconcile,
    CloseTimePeriod,
    CloseDueTimePeriods,
    TimesheetSignOff,
    JudgeSlaPeriod,
    JudgeDueSlaPeriods,
    DeliverNotification,
    SweepNotifications,
    BillEncounters,
    EncounterSignOff,
]


def activity_list(
    session_factory: sessionmaker[Session],
    issuer_prefix: str = "TG",
    notifier: Notifier | None = None,
    context: DocumentContext | None = None,
) -> list:
    notifier = notifier or Notifier()
    approval = ApprovalActivities(session_factory, notifier)
    acts = MilestoneRunActivities(session_factory, notifier)
    return [
        approval.plan_deadlines,
        approval.record_decision,
        approval.record_ignored_decision,
        approval.notify,
        acts.open_run,
        acts.set_stage,
        acts.check_dependencies,
        acts.post_billing,
        RunEndActivities(session_factory).end_run,
        *invoicing_activities(session_factory, notifier, context),
        *CloseoutActivities(session_factory, notifier).all(),
        *ChangeOrderActivities(session_factory, notifier).all(),
        *ClawbackActivities(session_factory, issuer_prefix, notifier).all(),
        *EncounterActivities(session_factory).all(),
    ]


def invoicing_activities(
    session_factory: sessionmaker[Session],
    notifier: Notifier | None = None,
    context: DocumentContext | None = None,
) -> list:
    """``context`` (the issuer, the verify links) from the settings; without, the defaults."""
    documents = DocumentActivities(session_factory, notifier)
    credit_notes = CreditNoteActivities(session_factory)
    issued = IssuedDocumentActivities(session_factory, context)
    return [*documents.all(), credit_notes.issue_credit_note, issued.record_document]


def activity_interceptors() -> list[Interceptor]:
    """Outermost first, after the client's (tracing): the step log sees what PermanentErrors
    makes of an error, and so logs whether Temporal will retry it."""
    return [StepLog(), PermanentErrors()]


def build_worker(
    client: Client,
    session_factory: sessionmaker[Session],
    task_queue: str,
    issuer_prefix: str = "TG",
    settings: Settings | None = None,
    traced: Tracing | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker, its activities bound to one session factory; ``issuer_prefix`` numbers the
    credit notes a clawback issues (the finalize and credit-note workflows carry their own).

    With ``settings`` notices carry approval links and are delivered as soon as they are
    written (SMTP and webhooks as configured); without, they are written and wait for the sweep.
    Called from a coroutine: notices are handed to delivery through the running event loop.

    With tracing configured (``telemetry.py``; ``traced``, else the environment) the worker's
    client carries the tracing interceptor, so workflows, activities and the workflows they
    start continue the trace that started them. ``interceptors`` go innermost, next to the
    activities (tests hold an activity in flight with one)."""
    traced = traced or tracing("tollgate-worker")
    if traced is not None:
        client = traced.client(client)
    notifier, config = Notifier(), DeliveryConfig.from_settings(settings or Settings())
    context = DocumentContext.of(settings or Settings())
    if settings is not None:
        links = LinkSigning(settings.public_url, settings.link_secret)
        loop = asyncio.get_running_loop()
        notifier = Notifier(links, FirstAttempts(session_factory, config, client, task_queue, loop))
    # Activities use blocking SQLAlchemy sessions, so they run on a thread pool.
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            *activity_list(session_factory, issuer_prefix, notifier, context),
            ReconcileActivities(session_factory, client, task_queue).reconcile,
            *TimePeriodActivities(session_factory, notifier).all(),
            *TimesheetActivities(session_factory, notifier).all(),
            *EncounterSignOffActivities(session_factory, notifier).all(),
            TimesheetStarts(client, task_queue).start_timesheet_sign_off,
            *SlaPeriodActivities(session_factory).all(),
            *DeliveryActivities(session_factory, config, client, task_queue).all(),
        ],
        activity_executor=ThreadPoolExecutor(max_workers=8),
        max_concurrent_activities=8,
        interceptors=[*activity_interceptors(), *interceptors],
        # A crashed worker's runs move to a live one within seconds, not the SDK's default 10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


# What a Temporal server that is restarting answers for a while.
RESTARTING = (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


async def ensure_schedules(
    client: Client, settings: Settings, patience_seconds: float = 120
) -> None:
    """Create or update the worker's Schedules, riding out a Temporal server that restarts
    meanwhile: a worker must not die of a blip at its start (it polls already)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_seconds
    while True:
        try:
            await ensure_finalize_schedule(
                client,
                settings.task_queue,
                settings.finalize_cron,
                settings.issuer_prefix,
                time_zone=settings.finalize_timezone,
            )
            await ensure_reconcile_schedule(
                client, settings.task_queue, settings.reconcile_every_seconds
            )
            await ensure_delivery_sweep_schedule(
                client, settings.task_queue, settings.delivery_sweep_every_seconds
            )
            await ensure_time_periods_schedule(client, settings.task_queue)
            await ensure_sla_periods_schedule(client, settings.task_queue)
            return
        except RPCError as err:
            if err.status not in RESTARTING or loop.time() > deadline:
                raise
            await asyncio.sleep(1)
