"""Activities of a change order: its stage, and applying or closing it once signed off.

Applying happens in one transaction under the engagement's row lock: the change set is checked
again against the milestones as they are now (a milestone triggered or billed since the proposal
makes the order ``conflicted`` and changes nothing), then milestones are updated, added or marked
removed, new T&M terms kept with the open months repriced (``services.time_term_changes``), the
engagement's version is bumped and its new terms are kept as that version. Each activity finds
its earlier effect on a retry (the order is no longer ``proposed``).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_, deadlines_for, load_run
from activities.audit import run_audit
from activities.delivery import Notifier
from db.models import ChangeOrder, Engagement, Milestone, MilestoneDependency
from domain.change_orders import check_changes
from domain.lifecycle import TERMINAL_STAGES, MilestoneStatus
from domain.times import iso
from services import notices
from services.change_orders import milestone_states
from services.engagements import add_milestones, record_version
from services.inputs import MilestoneIn
from services.time_term_changes import apply_terms_change, lock_time_terms, plan_terms_change
from workflows.change_order_contracts import ChangeOrderInput, ChangeOrderResult, ChangeOrderStep

# Change-order fields → the milestone column each one sets.
COLUMNS = {
    "name": "name",
    "fee_minor": "fee_minor",
    "trigger": "trigger_mode",
    "allow_partial": "allow_partial",
    "acceptance_criteria": "criteria",
}


class ChangeOrderActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    def all(self) -> list[Callable[..., Any]]:
        """The worker registers these (``plan_deadlines`` and decisions are ApprovalActivities')."""
        return [self.change_order_stage, self.apply_change_order, self.close_change_order]

    @activity.defn(name="change_order_stage")
    def change_order_stage(self, req: ChangeOrderStep) -> None:
        order, stage = req.change_order, req.stage
        assert stage is not None, "change_order_stage is called with the stage to record"
        with self._sessions.begin() as session:
            run = load_run(session, order.run_id)
            if run.stage in TERMINAL_STAGES:
                return  # ended meanwhile (cancelled): a late stage change must not revive it
            run.stage = stage
            run_audit(
                session,
                order,
                kind="stage_changed",
                at=at_(req.at),
                data={"stage": req.stage, "change_order_id": order.change_order_id},
                dedupe_key=f"{order.run_id}:stage:{req.stage}",
            )
            queued = []
            if stage == "awaiting_approval":
                notice = notices.approval_requested(
                    order.subject,
                    "change_order",
                    deadlines_for(order.policy, at_(req.at)),
                    detail=f"Change order {order.change_order_id}: {order.reason}",
                )
                to = notices.recipients(order.policy.roles)
                queued = self._notifier.queue(session, notice, to)
        self._notifier.started(queued)

    @activity.defn(name="apply_change_order")
    def apply_change_order(self, req: ChangeOrderStep) -> ChangeOrderResult:
        order = req.change_order
        terms_change = order.changes.get("time_and_materials")
        with self._sessions.begin() as session:
            if terms_change is not None:  # terms and open months first, as posting time does
                lock_time_terms(session, order.engagement_id)
            # Milestones before the engagement: the order billing and audit appends lock them in.
            milestones = {
                m.key: m
                for m in session.scalars(
                    select(Milestone)
                    .where(Milestone.engagement_id == order.engagement_id)
                    .order_by(Milestone.position)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            }
            engagement = _lock_engagement(session, order.engagement_id)
            row = _load(session, order)
            if row.status != "proposed":  # a retry after the work committed
                return ChangeOrderResult(row.status, row.version, row.detail)
            conflicts = _conflicts(session, engagement, order, milestones)
            plan = None
            if not conflicts and terms_change is not None:
                plan = plan_terms_change(session, engagement, terms_change)
                conflicts = [r.message for r in plan.refusals]
            if conflicts:
                return _close(session, order, row, "conflicted", "; ".join(conflicts), req.at)
            data = _apply(session, engagement, order.changes, milestones)
            if plan is not None:
                data["time_and_materials"] = apply_terms_change(session, engagement, plan)
            engagement.version += 1
            record_version(session, engagement, order.change_order_id)
            row.version = engagement.version
            result = _close(session, order, row, "applied", None, req.at)
            run_audit(
                session,
                order,
                kind="change_order_applied",
                at=at_(req.at),
                data={
                    "change_order_id": order.change_order_id,
                    "base_version": order.base_version,
                    "version": engagement.version,
                    **data,
                },
                dedupe_key=f"{order.run_id}:change_order_applied",
            )
            return result

    @activity.defn(name="close_change_order")
    def close_change_order(self, req: ChangeOrderStep) -> ChangeOrderResult:
        """A rejected or expired change order: recorded and audited, nothing else changes."""
        order = req.change_order
        status = req.outcome or "rejected"
        with self._sessions.begin() as session:
            _lock_engagement(session, order.engagement_id)
            row = _load(session, order)
            if row.status != "proposed":
                return ChangeOrderResult(row.status, row.version, row.detail)
            return _close(session, order, row, status, req.detail, req.at)


def _lock_engagement(session: Session, engagement_id: str) -> Engagement:
    """Serialize with proposals and other change orders of the same engagement."""
    return session.scalars(
        select(Engagement)
        .where(Engagement.id == engagement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _load(session: Session, order: ChangeOrderInput) -> ChangeOrder:
    row = session.get(ChangeOrder, order.change_order_id)
    if row is None:
        raise ApplicationError(
            f"change order {order.change_order_id} is not recorded",
            type="ChangeOrderNotFound",
            non_retryable=True,
        )
    return row


def _conflicts(
    session: Session,
    engagement: Engagement,
    order: ChangeOrderInput,
    milestones: dict[str, Milestone],
) -> list[str]:
    """Why the approved change set can no longer apply as proposed."""
    if engagement.status != "active":
        return [f"engagement is {engagement.status}"]
    if engagement.version != order.base_version:
        return [f"engagement is at version {engagement.version}, not {order.base_version}"]
    states = milestone_states(session, list(milestones.values()))
    return [r.message for r in check_changes(states, order.changes)]


def _close(
    session: Session,
    order: ChangeOrderInput,
    row: ChangeOrder,
    status: str,
    detail: str | None,
    at: str,
) -> ChangeOrderResult:
    """Settle the order and its run row; every outcome but ``applied`` is audited here."""
    moment = at_(at)
    row.status, row.detail, row.decided_at = status, detail or None, moment
    run = load_run(session, order.run_id)
    run.stage, run.outcome, run.outcome_detail = status, status, detail or None
    run.closed_at = run.closed_at or moment
    if status != "applied":
        run_audit(
            session,
            order,
            kind=f"change_order_{status}",
            at=moment,
            data={"change_order_id": order.change_order_id, "detail": detail},
            dedupe_key=f"{order.run_id}:change_order_{status}",
        )
    return ChangeOrderResult(status, row.version, row.detail)


def _apply(
    session: Session,
    engagement: Engagement,
    changes: dict[str, Any],
    milestones: dict[str, Milestone],
) -> dict[str, Any]:
    """Apply a checked change set; returns what changed (old → new) for the audit trail."""
    # New milestones first, so an updated milestone may depend on one of them.
    new = [MilestoneIn.model_validate(m) for m in changes.get("add") or []]
    added = add_milestones(session, engagement, new, existing=milestones)
    by_key = {**milestones, **added}
    updated = []
    for update in changes.get("update") or []:
        milestone = by_key[update["milestone"]]
        diff: dict[str, Any] = {}
        for field, column in COLUMNS.items():
            if field in update:
                diff[field] = {"old": getattr(milestone, column), "new": update[field]}
                setattr(milestone, column, update[field])
        if "fee_minor" in update and milestone.fee_basis is not None:
            # A bonus priced as a percent of another fee now has a fee of its own.
            diff["fee_basis"] = {"old": milestone.fee_basis, "new": None}
            milestone.fee_basis = None
        if "deadline" in update:
            diff["deadline"] = {"old": iso(milestone.deadline), "new": update["deadline"]}
            milestone.deadline = _instant(update["deadline"])
        if "depends_on" in update:
            diff["depends_on"] = {
                "old": _dependencies(session, milestone, by_key),
                "new": update["depends_on"],
            }
            _replace_dependencies(session, milestone, update["depends_on"], by_key)
        updated.append({"milestone": milestone.key, "milestone_id": milestone.id, "changes": diff})
    removed = []
    for key in changes.get("remove") or []:
        milestone = by_key[key]
        milestone.status = MilestoneStatus.REMOVED
        session.execute(
            delete(MilestoneDependency).where(
                or_(
                    MilestoneDependency.milestone_id == milestone.id,
                    MilestoneDependency.depends_on_id == milestone.id,
                )
            )
        )
        removed.append({"milestone": key, "milestone_id": milestone.id})
    session.flush()
    return {
        "updated": updated,
        "added": [{"milestone": m.key, "milestone_id": m.id} for m in added.values()],
        "removed": removed,
    }


def _dependencies(
    session: Session, milestone: Milestone, by_key: dict[str, Milestone]
) -> list[dict[str, Any]]:
    keys = {m.id: key for key, m in by_key.items()}
    rows = session.scalars(
        select(MilestoneDependency).where(MilestoneDependency.milestone_id == milestone.id)
    )
    return [{"milestone": keys[d.depends_on_id], "kpi": d.kpi} for d in rows]


def _replace_dependencies(
    session: Session,
    milestone: Milestone,
    depends_on: list[dict[str, Any]],
    by_key: dict[str, Milestone],
) -> None:
    session.execute(
        delete(MilestoneDependency).where(MilestoneDependency.milestone_id == milestone.id)
    )
    session.add_all(
        MilestoneDependency(
            milestone_id=milestone.id,
            depends_on_id=by_key[d["milestone"]].id,
            kpi=d.get("kpi"),
        )
        for d in depends_on
    )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))
