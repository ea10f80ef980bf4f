"""Temporal runs an activity at least once: every activity the worker registers, run twice with
the same input, has its effect once (rows, audit events, lines) and answers the same.

Driven through ActivityEnvironment on migrated SQLite and PostgreSQL databases; setup goes
through the functions the routes call. The effect of a call is read off a snapshot of every
table: the rows it added or changed, per table.
"""

import inspect
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.approval import ApprovalActivities
from activities.change_orders import ChangeOrderActivities
from activities.clawback import ClawbackActivities
from activities.closeout import CloseoutActivities
from activities.credit_notes import CreditNoteActivities
from activities.documents import DocumentActivities
from activities.encounters import EncounterActivities
from activities.issued_documents import IssuedDocumentActivities
from activities.milestone_run import MilestoneRunActivities
from activities.run_ends import RunEndActivities
from api.example import platform_migration
from api.routes.customers import create_customer
from api.routes.engagements import create_engagement
from api.routes.principals import create_principal
from api.schemas import ChangeOrderIn, CloseoutIn, CustomerIn, EngagementIn, PrincipalIn, TriggerIn
from db.models import Base, InvoiceLine, Notification, WebhookEndpoint, new_id
from db.session import make_engine, make_session_factory
from services.callers import Caller
from services.change_orders import propose
from services.closeouts import request_closeout
from services.triggers import accept_trigger
from tests.conftest import database
from tests.encounter_setup import encounter_engagement, priced_batch
from worker import activity_list
from workflows.change_order_contracts import ChangeOrderInput, ChangeOrderStep
from workflows.closeout_contracts import CloseoutStep
from workflows.contracts import (
    ApprovalPolicy,
    CheckDependencies,
    DecisionSignal,
    DecisionView,
    EndRun,
    Notify,
    OpenRun,
    PlanDeadlines,
    PostBilling,
    RecordDecision,
    RecordIgnoredDecision,
    RunInput,
    SetStage,
)
from workflows.encounters import BillChunkRequest
from workflows.invoicing import (
    CreditLine,
    DueDraftsRequest,
    FinalizeRequest,
    IssueCreditNoteInput,
)
from workflows.issued_documents import RecordDocument
from workflows.watch_contracts import (
    CheckReport,
    ClawBack,
    CloseWindow,
    KpiReportSignal,
    OpenWindow,
    WatchInput,
)

ADMIN = Caller("admin", "admin")
AT = "2026-03-02T15:00:00+00:00"
# Every activity `tollgate worker` registers, and list_due_drafts (called by FinalizeDrafts), each
# run twice by a test below.
COVERED = {
    *("plan_deadlines", "record_decision", "record_ignored_decision", "notify"),
    *("open_run", "set_stage", "check_dependencies", "post_billing", "end_run"),
    *("finalize_invoice", "list_due_drafts", "list_non_empty_drafts", "issue_credit_note"),
    *("open_closeout", "set_closeout_stage", "accept_closeout", "plan_release"),
    *("release_retention", "change_order_stage", "apply_change_order", "close_change_order"),
    *("start_clawback_watch", "open_clawback_window", "check_kpi_report", "claw_back"),
    "close_clawback_window",
    "bill_encounter_chunk",
    "record_document",
}
Rows = dict[str, dict[tuple, tuple]]


def rows(sessions: sessionmaker[Session]) -> Rows:
    """Every row of every table, by primary key."""
    with sessions() as session:
        return {
            table.name: {
                tuple(row[c.name] for c in table.primary_key): tuple(row.values())
                for row in session.execute(table.select()).mappings()
            }
            for table in Base.metadata.sorted_tables
        }


def changes(before: Rows, after: Rows) -> dict[str, int]:
    """Rows added, changed or deleted, per table (only tables that changed)."""
    counts = {
        name: sum(before[name].get(key) != row for key, row in table.items())
        + len(before[name].keys() - table.keys())
        for name, table in after.items()
    }
    return {name: count for name, count in counts.items() if count}


def activity_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__temporal_activity_definition").name


@dataclass
class World:
    """One engagement (the example's) and its people, and the activities on its database."""

    sessions: sessionmaker[Session]
    people: dict[str, str]
    engagement: dict[str, Any]

    def milestone_id(self, key: str) -> str:
        return next(m["id"] for m in self.engagement["milestones"] if m["key"] == key)

    def trigger(self, key: str, **body: Any) -> RunInput:
        data = TriggerIn.model_validate({"source": "test", **body}).model_dump(mode="json")
        with self.sessions() as session:
            accepted = accept_trigger(
                session, ADMIN, self.milestone_id(key), f"{key}-{uuid.uuid4()}", data
            )
        return accepted.run

    async def twice(
        self, fn: Callable[..., Any], *args: Any, same: Callable[[Any], Any] = lambda r: r
    ) -> tuple[Any, dict[str, int]]:
        """Run ``fn`` twice; the first call's result and effect, after checking that the second
        call changed nothing and answered the same (as seen through ``same``)."""
        name = activity_name(fn)
        assert name in COVERED, f"add {name} to COVERED"
        before = rows(self.sessions)
        first = await _run(fn, *args)
        after = rows(self.sessions)
        second = await _run(fn, *args)
        assert changes(after, rows(self.sessions)) == {}, f"{name} had a second effect"
        assert same(second) == same(first), f"{name} answered differently the second time"
        return first, changes(before, after)

    async def bill(self, run: RunInput) -> None:
        """Take a run through to billed, once (its activities' twice-ness is tested below)."""
        acts = MilestoneRunActivities(self.sessions)
        await _run(acts.open_run, OpenRun(run, AT))
        await _run(acts.post_billing, PostBilling(run, AT))


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    result = ActivityEnvironment().run(fn, *args)
    return await result if inspect.isawaitable(result) else result


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database(request.param, tmp_path) as url:
        engine: Engine = make_engine(url)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


def new_world(sessions: sessionmaker[Session], **engagement_changes: Any) -> World:
    with sessions() as session:
        people = {
            name: create_principal(
                PrincipalIn(name=name, email=f"{name}@example.com"), session, ADMIN
            )["id"]
            for name in ("lead", "client", "lead_backup", "client_backup", "stranger")
        }
        customer = create_customer(CustomerIn(name="Acme Corp", currency="USD"), session, ADMIN)
        body = platform_migration(customer["id"], *list(people.values())[:4])
        engagement = create_engagement(
            EngagementIn.model_validate(body | engagement_changes), session, ADMIN
        )
    return World(sessions, people, engagement)


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    return new_world(sessions)


def test_every_activity_the_worker_registers_is_run_twice_here():
    registered = {activity_name(a) for a in activity_list(make_session_factory(None))}
    assert registered - COVERED == set()


async def test_milestone_run_activities_run_twice_record_the_run_once(world: World):
    approval, acts = ApprovalActivities(world.sessions), MilestoneRunActivities(world.sessions)
    phase1, phase2 = (
        world.trigger("phase-1"),
        world.trigger("phase-2", kpis={"error_rate_pct": "0.4"}),
    )

    opened, effect = await world.twice(acts.open_run, OpenRun(phase1, AT))
    assert effect == {"audit_events": 2}  # trigger received, criteria evaluated
    assert opened.amounts.gross_minor == 3_000_000
    deadlines, effect = await world.twice(approval.plan_deadlines, PlanDeadlines(phase1.policy, AT))
    assert effect == {} and len(deadlines) == 5  # with the deemed-acceptance warning
    _, effect = await world.twice(acts.set_stage, SetStage(phase1, "awaiting_approval", AT))
    assert effect == {"runs": 1, "audit_events": 1, "notification_outbox": 2}

    lead = DecisionView("delivery_lead", world.people["lead"], "approve", "approver", "ok", AT)
    _, effect = await world.twice(approval.record_decision, RecordDecision(phase1.subject, lead))
    assert effect == {"decisions": 1, "audit_events": 1, "notification_outbox": 2}
    stranger = DecisionSignal("client_ap", world.people["stranger"], "approve")
    ignored = RecordIgnoredDecision(phase1.subject, stranger, "not an approver", AT, sequence=1)
    _, effect = await world.twice(approval.record_ignored_decision, ignored)
    assert effect == {"audit_events": 1}
    reminder = Notify(phase1.subject, "reminder", ["client_ap"], AT)
    _, effect = await world.twice(approval.notify, reminder)
    assert effect == {"notification_outbox": 1, "audit_events": 1}

    await _run(acts.open_run, OpenRun(phase2, AT))
    check, effect = await world.twice(acts.check_dependencies, CheckDependencies(phase2, AT))
    assert (check.state, check.waiting_on, effect) == ("waiting", ["phase-1"], {"audit_events": 1})

    billed, effect = await world.twice(acts.post_billing, PostBilling(phase1, AT))
    assert effect == {
        "invoices": 1,
        "invoice_lines": 2,  # milestone and retention withheld
        "retention_ledger": 1,
        "milestones": 1,
        "runs": 1,
        "audit_events": 4,  # two lines posted, retention held, milestone accepted
        "notification_outbox": 2,  # "billed", to both roles
    }
    assert billed.dependant_run_ids == [phase2.run_id]
    check, effect = await world.twice(acts.check_dependencies, CheckDependencies(phase2, AT))
    assert (check.state, effect) == ("satisfied", {"audit_events": 1})

    rejected = SetStage(phase2, "rejected", AT, outcome="rejected", detail="not good enough")
    _, effect = await world.twice(acts.set_stage, rejected)
    # the claim is released; the rejection is told to both roles
    assert effect == {"milestones": 1, "runs": 1, "audit_events": 1, "notification_outbox": 2}

    retried = world.trigger("phase-2", kpis={"error_rate_pct": "0.4"})
    ends = RunEndActivities(world.sessions)
    _, effect = await world.twice(ends.end_run, EndRun(retried.run_id, "failed", "gave up", AT))
    assert effect == {"milestones": 1, "runs": 1, "audit_events": 1, "notification_outbox": 1}


def watch_of(run: RunInput) -> WatchInput:
    """A clawback watch over the run's billed line (as if the milestone were a bonus)."""
    return WatchInput(
        watch_id=f"watch-{run.milestone_id}-{uuid.uuid4().hex[:8]}",
        engagement_id=run.engagement_id,
        customer_id=run.customer_id,
        milestone_id=run.milestone_id,
        milestone_key=run.milestone_key,
        milestone_name=run.milestone_name,
        bonus_run_id=run.run_id,
        billed_minor=run.fee_minor,
        currency=run.currency,
        clawback={
            "window": {"duration": "P90D"},
            "kpi": {"metric": "error_rate_pct", "op": "<=", "threshold": "0.5"},
            "percent": "10",
        },
        calendar=run.policy.calendar,
        billed_at=AT,
    )


def subscribe(world: World, **owner: str) -> str:
    """A webhook endpoint for the document notices, registered on an engagement or customer."""
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        url="https://hooks.example.com/tollgate",
        events=["clawback_issued", "invoice_finalized"],
        secret="whsec_" + "a" * 32,
        **owner,
    )
    with world.sessions.begin() as session:
        session.add(endpoint)
    return endpoint.id


def told(world: World, document_id: str) -> set[tuple[str, str, str]]:
    """(kind, channel, recipient) of every notice about a document."""
    with world.sessions() as session:
        return {
            (n.kind, n.channel, n.recipient_id)
            for n in session.scalars(select(Notification).where(Notification.run_id == document_id))
        }


async def test_clawback_and_invoice_document_activities_run_twice_issue_once(world: World):
    phase1 = world.trigger("phase-1")
    await world.bill(phase1)
    clawback, documents = (
        ClawbackActivities(world.sessions, "TG"),
        DocumentActivities(world.sessions),
    )
    watch = watch_of(phase1)
    on_engagement = subscribe(world, engagement_id=world.engagement["id"])
    on_customer = subscribe(world, customer_id=world.engagement["customer_id"])
    client = world.people["client"]  # the client_ap role: the customer's billing contact

    _, effect = await world.twice(clawback.open_clawback_window, OpenWindow(watch, AT))
    assert effect == {"audit_events": 1}
    report = KpiReportSignal("kpr_test", {"error_rate_pct": "0.9"}, AT)
    outcome, effect = await world.twice(clawback.check_kpi_report, CheckReport(watch, report, AT))
    assert (outcome.outcome, effect) == ("breach", {"audit_events": 1})
    clawed, effect = await world.twice(clawback.claw_back, ClawBack(watch, report, "0.9 > 0.5", AT))
    assert clawed.amount_minor == 300_000 and clawed.invoice_line_id is not None
    # the clawback is told once: operators, the billing contact, each subscribed endpoint
    assert effect == {
        "invoices": 1,
        "invoice_lines": 1,
        "audit_events": 1,
        "notification_outbox": 4,
    }
    assert told(world, clawed.invoice_line_id) == {
        ("clawback_issued", "email", "operators"),
        ("clawback_issued", "email", client),
        ("clawback_issued", "webhook", on_engagement),
        ("clawback_issued", "webhook", on_customer),
    }
    close = CloseWindow(watch, "2026-06-01T15:00:00+00:00", AT, reports=1)
    _, effect = await world.twice(clawback.close_clawback_window, close)
    assert effect == {"audit_events": 1}

    drafts, effect = await world.twice(documents.list_non_empty_drafts)
    assert len(drafts) == 1 and effect == {}
    due, effect = await world.twice(
        documents.list_due_drafts, DueDraftsRequest("UTC", None, AT, limit=10)
    )
    assert due.invoice_ids == drafts and effect == {}
    request = FinalizeRequest(drafts[0], "TG", "admin", AT)
    # A repeat returns the same document, saying it was not finalized just now.
    finalized, effect = await world.twice(
        documents.finalize_invoice, request, same=lambda r: replace(r, newly=True)
    )
    assert finalized.number == "TG-2026-000001" and finalized.newly
    assert effect == {
        "invoices": 1,
        "document_sequences": 1,
        "audit_events": 1,
        "notification_outbox": 4,  # invoice finalized, told once to the same four
    }
    assert {kind for kind, _, _ in told(world, drafts[0])} == {"invoice_finalized"}
    assert len(told(world, drafts[0])) == 4
    # Its PDF is rendered and recorded once; a repeat finds it recorded.
    issued = IssuedDocumentActivities(world.sessions)
    pdf = RecordDocument("invoice", drafts[0], "admin", AT)
    recorded, effect = await world.twice(issued.record_document, pdf)
    assert recorded.number == "TG-2026-000001" and len(recorded.sha256) == 64
    assert effect == {"issued_documents": 1, "invoices": 1, "audit_events": 1}

    # Once the invoice is a document, a clawback is a credit note, told once.
    later = watch_of(phase1)
    clawed, effect = await world.twice(clawback.claw_back, ClawBack(later, report, "0.8 > 0.5", AT))
    assert clawed.amount_minor == 300_000 and clawed.credit_note_id is not None
    assert effect == {
        "credit_notes": 1,
        "credit_note_lines": 1,
        "document_sequences": 1,
        "audit_events": 2,  # credit note issued, clawback issued
        "notification_outbox": 4,
    }
    assert len(told(world, clawed.credit_note_id)) == 4

    credits = CreditNoteActivities(world.sessions)
    with world.sessions() as session:
        line_id = session.scalar(select(InvoiceLine.id).where(InvoiceLine.kind == "milestone"))
    note = IssueCreditNoteInput(
        drafts[0],
        [CreditLine(line_id, 50_000, "Goodwill")],
        "Late delivery",
        "api",
        "admin",
        dedupe_key="credit-once",
        issuer_prefix="TG",
        at=AT,
    )
    issued, effect = await world.twice(credits.issue_credit_note, note)
    assert issued.number == "TG-CN-2026-000002" and issued.total_minor == -50_000
    assert effect == {
        "credit_notes": 1,
        "credit_note_lines": 1,
        "document_sequences": 1,
        "audit_events": 1,
    }
    note_pdf = RecordDocument("credit_note", issued.credit_note_id, "admin", AT)
    recorded, effect = await world.twice(
        IssuedDocumentActivities(world.sessions).record_document, note_pdf
    )
    assert recorded.number == "TG-CN-2026-000002"
    assert effect == {"issued_documents": 1, "credit_notes": 1, "audit_events": 1}


async def test_closeout_activities_run_twice_close_and_release_once(
    sessions: sessionmaker[Session],
):
    retention = {
        "percent": "10",
        "release": "on_final_signoff",
        "release_delay": {"duration": "P180D"},
    }
    world = new_world(sessions, retention=retention)
    await world.bill(world.trigger("phase-1"))
    acts = CloseoutActivities(sessions)
    waive = CloseoutIn.model_validate(
        {"waive": [{"milestone": key, "reason": "descoped"} for key in ("phase-2", "phase-3")]}
    )
    with sessions() as session:
        refused = request_closeout(session, ADMIN, world.engagement["id"], waive)
    no = CloseoutStep(refused, AT, stage="rejected", outcome="rejected", detail="not yet")
    _, effect = await world.twice(acts.set_closeout_stage, no)
    assert effect == {"engagements": 1, "runs": 1, "audit_events": 1}  # active again

    with sessions() as session:
        closeout = request_closeout(session, ADMIN, world.engagement["id"], waive)
    balance, effect = await world.twice(acts.open_closeout, CloseoutStep(closeout, AT))
    assert (balance, effect) == (300_000, {"audit_events": 1})
    waiting = CloseoutStep(closeout, AT, stage="awaiting_approval")
    _, effect = await world.twice(acts.set_closeout_stage, waiting)
    assert effect == {"runs": 1, "audit_events": 1, "notification_outbox": 2}
    _, effect = await world.twice(acts.accept_closeout, CloseoutStep(closeout, AT))
    assert effect == {"engagements": 1, "milestones": 2, "runs": 1, "audit_events": 3}
    release_at, effect = await world.twice(acts.plan_release, CloseoutStep(closeout, AT))
    assert (release_at.kind, effect) == ("release", {})
    released, effect = await world.twice(acts.release_retention, CloseoutStep(closeout, AT))
    assert released.released_minor == 300_000
    assert effect == {
        "invoices": 1,
        "invoice_lines": 1,
        "retention_ledger": 1,
        "runs": 1,
        "audit_events": 1,
    }


async def test_change_order_activities_run_twice_apply_or_close_the_order_once(world: World):
    acts = ChangeOrderActivities(world.sessions)

    def proposal(fee_minor: int) -> ChangeOrderInput:
        changes = {"update": [{"milestone": "phase-3", "fee_minor": fee_minor}]}
        body = ChangeOrderIn.model_validate({"reason": "Scope agreed", "changes": changes})
        with world.sessions() as session:
            return propose(session, ADMIN, world.engagement["id"], body).order

    order = proposal(3_200_000)
    waiting = ChangeOrderStep(order, AT, stage="awaiting_approval")
    _, effect = await world.twice(acts.change_order_stage, waiting)
    assert effect == {"runs": 1, "audit_events": 1, "notification_outbox": 2}
    approved = ChangeOrderStep(order, AT, outcome="approved")
    applied, effect = await world.twice(acts.apply_change_order, approved)
    assert (applied.status, applied.version) == ("applied", 2)
    assert effect == {
        "engagements": 1,
        "milestones": 1,
        "engagement_versions": 1,
        "change_orders": 1,
        "runs": 1,
        "audit_events": 1,
    }

    rejected = ChangeOrderStep(proposal(3_400_000), AT, outcome="rejected", detail="too dear")
    closed, effect = await world.twice(acts.close_change_order, rejected)
    assert closed.status == "rejected"
    assert effect == {"change_orders": 1, "runs": 1, "audit_events": 1}


async def test_an_encounter_chunk_billed_twice_posts_its_lines_once(world: World):
    engagement = encounter_engagement(world.sessions, world.people, 3_333)
    batch_id = priced_batch(world.sessions, engagement["id"], 3)
    bill = EncounterActivities(world.sessions).bill_encounter_chunk
    billed, effect = await world.twice(bill, BillChunkRequest(batch_id, 0, 500, AT))
    assert (billed.posted, billed.posted_minor, billed.remaining) == (3, 9_999, 0)
    assert effect == {"invoices": 1, "invoice_lines": 3, "encounters": 3, "audit_events": 1}


async def test_starting_a_clawback_watch_twice_starts_one_watch(dev_server: WorkflowEnvironment):
    run = RunInput(
        run_id=f"run-{uuid.uuid4()}",
        engagement_id="eng_x",
        customer_id="cus_x",
        milestone_id=f"ms_{uuid.uuid4().hex[:8]}",
        milestone_key="launch-bonus",
        milestone_name="Launch bonus",
        trigger_id="trg_x",
        trigger_mode="automatic",
        completion_percent="100",
        kpis={},
        evidence_ids=[],
        fee_minor=500_000,
        currency="USD",
        retention_percent="0",
        criteria=[],
        depends_on=[],
        policy=ApprovalPolicy(roles={}),
    )
    watch = watch_of(run)
    clawback = ClawbackActivities(make_session_factory(None), "TG")
    env = ActivityEnvironment(client=dev_server.client)
    await env.run(clawback.start_clawback_watch, watch)
    handle = dev_server.client.get_workflow_handle(watch.watch_id)
    first = await handle.describe()
    await env.run(clawback.start_clawback_watch, watch)
    second = await handle.describe()
    try:
        assert second.run_id == first.run_id
        assert second.status == WorkflowExecutionStatus.RUNNING
    finally:
        await handle.terminate("test over")
