"""Activities of the milestone run: every side effect, each idempotent under retries.

Each method runs in one database transaction and finds its own earlier work (unique constraints
and audit dedupe keys) so that Temporal's at-least-once execution has exactly-once effects.
"""

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_, deadlines_for, load_run, record_decision_in
from activities.audit import run_audit
from activities.delivery import Notifier
from activities.invoicing import post_milestone_lines, run_charge, success_fee_of
from db.audit import evidence_refs
from db.models import Milestone, MilestoneDependency, Run, Trigger
from domain.billing import Charge
from domain.confirmations import KEEPS_CONFIRMATION
from domain.criteria import Criterion, check_kpi, evaluate
from domain.lifecycle import MilestoneStatus, RunStage, status_after_unbilled_end, transition
from services import notices
from workflows.contracts import (
    TERMINAL_STAGES,
    Amounts,
    BillingResult,
    CheckDependencies,
    CriterionOutcome,
    DependencyCheck,
    OpenRun,
    PostBilling,
    RunInput,
    RunOpened,
    SetStage,
)


def _criteria(run: RunInput) -> list[CriterionOutcome]:
    results = evaluate(
        [Criterion(**c) for c in run.criteria],
        run.kpis,
        require_metrics=run.trigger_mode != "manual",
    )
    return [CriterionOutcome(r.id, r.passed, r.detail) for r in results]


def _charge(session: Session, run: RunInput) -> Charge:
    """What accepting this run bills: the same while the run is open (it holds the milestone,
    or, a filing of a repeatable milestone, bills on its own)."""
    return run_charge(run, session.get_one(Milestone, run.milestone_id))


def _named(run: RunInput) -> str:
    """The milestone, and the filing when the run carries a regulator's confirmation (or the SLA
    period it bills)."""
    if run.period is not None:
        return f"{run.milestone_name} (period {run.period})"
    if run.confirmation_id is None:
        return run.milestone_name
    return f"{run.milestone_name} (confirmation {run.confirmation_id})"


def _amounts(gross: int, retention: int, net: int) -> list[tuple[str, int]]:
    return [("Gross", gross), ("Retention withheld", retention), ("Net invoiced", net)]


class MilestoneRunActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    @activity.defn(name="open_run")
    def open_run(self, req: OpenRun) -> RunOpened:
        run = req.run
        criteria = _criteria(run)
        deadlines = deadlines_for(run.policy, at_(req.opened_at))
        with self._sessions.begin() as session:
            db_run = load_run(session, run.run_id)
            trigger = session.get_one(Trigger, db_run.trigger_id)
            computed = success_fee_of(run)
            charge = _charge(session, run)
            run_audit(
                session,
                run,
                actor=trigger.actor,
                kind="trigger_received",
                at=trigger.created_at,
                data={
                    "trigger_id": trigger.id,
                    "idempotency_key": trigger.idempotency_key,
                    **trigger.body,
                },
                evidence=evidence_refs(session, run.evidence_ids),
                dedupe_key=f"{run.run_id}:trigger_received",
            )
            run_audit(
                session,
                run,
                kind="criteria_evaluated",
                data={"trigger_mode": run.trigger_mode, "results": [vars(c) for c in criteria]},
                dedupe_key=f"{run.run_id}:criteria_evaluated",
            )
            if computed is not None:
                run_audit(
                    session,
                    run,
                    kind="success_fee_computed",
                    data={
                        **computed.as_dict(),
                        "currency": run.currency,
                        "explanation": computed.explain(run.currency),
                    },
                    dedupe_key=f"{run.run_id}:success_fee_computed",
                )
            queued = []
            if req.enters_approval:
                entering = SetStage(run=run, stage=RunStage.AWAITING_APPROVAL, at=req.opened_at)
                queued = self._change_stage(session, entering)
        self._notifier.started(queued)
        amounts = Amounts(charge.gross_minor, charge.retention_minor, charge.net_minor)
        return RunOpened(criteria=criteria, deadlines=deadlines, amounts=amounts)

    @activity.defn(name="set_stage")
    def set_stage(self, req: SetStage) -> None:
        with self._sessions.begin() as session:
            queued = self._change_stage(session, req)
        self._notifier.started(queued)

    def _change_stage(self, session: Session, req: SetStage) -> list[int]:
        """Record the stage (audited, the milestone's status following it); the notices it
        queued are returned to be sent once the transaction commits."""
        run = req.run
        db_run = load_run(session, run.run_id)
        if db_run.stage in TERMINAL_STAGES and db_run.stage != req.stage:
            return []  # ended meanwhile (cancelled): a late stage change must not revive it
        queued = self._stage_notices(session, req)
        milestone = session.get_one(Milestone, run.milestone_id)
        db_run.stage = req.stage
        closing = req.stage in TERMINAL_STAGES
        released: dict[str, dict[str, str]] = {}
        if closing:
            db_run.outcome, db_run.outcome_detail = req.outcome, req.detail
            db_run.closed_at = db_run.closed_at or at_(req.at)
            if db_run.confirmation_held and req.stage not in KEEPS_CONFIRMATION:
                released = {"released": {"confirmation_id": db_run.confirmation_held}}
                db_run.confirmation_held = None
            if milestone.open_run_id == run.run_id:
                milestone.open_run_id = None
                milestone.status = transition(
                    milestone.status,
                    status_after_unbilled_end(Decimal(milestone.accepted_percent), req.stage),
                )
        elif milestone.open_run_id == run.run_id:
            milestone.status = transition(milestone.status, MilestoneStatus.IN_REVIEW)
        run_audit(
            session,
            run,
            kind="run_closed" if closing else "stage_changed",
            at=at_(req.at),
            data={
                "stage": req.stage,
                "outcome": req.outcome,
                "detail": req.detail,
                **released,
            },
            dedupe_key=f"{run.run_id}:stage:{req.stage}",
        )
        return queued

    def _stage_notices(self, session: Session, req: SetStage) -> list[int]:
        """The approvers hear that their decision is wanted, and how the run ended."""
        run = req.run
        if req.stage == RunStage.AWAITING_APPROVAL:
            charge = _charge(session, run)
            notice = notices.approval_requested(
                run.subject,
                "milestone",
                # Planned from the stage's time, a moment after the run opened: the same
                # business-day deadlines to the minute the email shows.
                deadlines_for(run.policy, at_(req.at)),
                amounts=_amounts(charge.gross_minor, charge.retention_minor, charge.net_minor),
                criteria=[vars(c) for c in _criteria(run)],
                evidence_ids=run.evidence_ids,
            )
            return self._notifier.queue(session, notice, notices.recipients(run.policy.roles))
        if req.stage in notices.ENDS:
            kind = notices.ENDS[req.stage]
            headline = f"{_named(run)}: {req.stage}"
            notice = notices.follow_up(session, kind, run.subject, headline, detail=req.detail)
            return self._notifier.queue(session, notice, notices.recipients(run.policy.roles))
        return []

    @activity.defn(name="check_dependencies")
    def check_dependencies(self, req: CheckDependencies) -> DependencyCheck:
        run = req.run
        waiting: list[str] = []
        failures: list[str] = []
        with self._sessions.begin() as session:
            for dep in run.depends_on:
                upstream = session.get_one(Milestone, dep.milestone_id)
                if upstream.status != MilestoneStatus.ACCEPTED:
                    waiting.append(dep.milestone_key)
                elif dep.kpi is not None:
                    result = check_kpi(
                        dep.kpi["metric"],
                        dep.kpi["op"],
                        dep.kpi["threshold"],
                        upstream.accepted_kpis or {},
                    )
                    if not result.passed:
                        failures.append(
                            f"{dep.milestone_key} was accepted with {result.detail}, "
                            f"which fails {dep.kpi['metric']} {dep.kpi['op']} "
                            f"{dep.kpi['threshold']}"
                        )
            state = "impossible" if failures else "waiting" if waiting else "satisfied"
            kind = {
                "impossible": "dependency_failed",
                "waiting": "dependency_wait",
                "satisfied": "dependencies_satisfied",
            }[state]
            if run.depends_on:
                run_audit(
                    session,
                    run,
                    kind=kind,
                    at=at_(req.at),
                    data={
                        "waiting_on": waiting,
                        "failures": failures,
                        "depends_on": [d.milestone_key for d in run.depends_on],
                    },
                    dedupe_key=f"{run.run_id}:{kind}",
                )
        return DependencyCheck(state=state, waiting_on=waiting, details=failures)

    @activity.defn(name="post_billing")
    def post_billing(self, req: PostBilling) -> BillingResult:
        run = req.run
        if req.decision is not None:
            # Committed on its own first: the approval stays recorded whatever billing meets.
            with self._sessions.begin() as session:
                recorded = record_decision_in(session, self._notifier, run.subject, req.decision)
            self._notifier.started(recorded)
        with self._sessions.begin() as session:
            if req.enters_billing:
                billing = SetStage(run=run, stage=RunStage.BILLING, at=req.at)
                queued = self._change_stage(session, billing)
            else:
                load_run(session, run.run_id)
                queued = []
            posted = post_milestone_lines(session, run, at_(req.at))
            if posted is not None:
                queued += self._billed_notices(session, run, posted.amounts)
        self._notifier.started(queued)
        if posted is None:
            raise ApplicationError(
                f"milestone {run.milestone_key} is already fully billed",
                type="BillingConflict",
                non_retryable=True,
            )
        # Looked up after the acceptance committed, so no dependant that starts later can miss it.
        # Open runs, not milestone claims: filings of a repeatable dependant hold no claim.
        with self._sessions() as session:
            dependants = session.scalars(
                select(Run.id)
                .join(MilestoneDependency, MilestoneDependency.milestone_id == Run.milestone_id)
                .where(
                    MilestoneDependency.depends_on_id == run.milestone_id,
                    Run.kind == "milestone",
                    Run.stage.not_in(TERMINAL_STAGES),
                )
                .order_by(Run.id)
            ).all()
        return BillingResult(
            invoice_id=posted.invoice_id,
            amounts=posted.amounts,
            dependant_run_ids=[r for r in dependants if r],
        )

    def _billed_notices(self, session: Session, run: RunInput, amounts: Amounts) -> list[int]:
        notice = notices.follow_up(
            session, notices.NoticeKind.RUN_BILLED, run.subject, f"{_named(run)}: billed"
        )
        notice.amounts = _amounts(amounts.gross_minor, amounts.retention_minor, amounts.net_minor)
        return self._notifier.queue(session, notice, notices.recipients(run.policy.roles))
