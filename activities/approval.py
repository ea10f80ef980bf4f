"""Sign-off activities shared by milestone runs, close-outs and change orders.

Each is idempotent: decisions are unique per (run, role), notifications per recipient, and audit
events carry dedupe keys, so a retried activity has its effect once.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import SYSTEM_ACTOR, run_audit
from activities.delivery import Notifier
from db.audit import evidence_refs
from db.models import Decision, Run
from domain.calendar import (
    BusinessCalendar,
    deadline_after,
    deadline_before,
    describe_span,
    parse_span,
)
from domain.times import iso
from services.notices import Notice, NoticeKind, Recipient, follow_up
from services.notices import recipients as to_recipients
from workflows.contracts import (
    ApprovalPolicy,
    Deadline,
    DecisionView,
    Notify,
    PlanDeadlines,
    RecordDecision,
    RecordIgnoredDecision,
    Subject,
)

DEADLINE_LABELS = {
    "reminder": "reminder",
    "escalation": "escalation",
    "deemed_warning": "deemed-acceptance warning",
    "deemed_acceptance": "deemed acceptance",
    "expiry": "expiry",
}


# Notify's kind → the notice kind, its headline and the audit event it records.
FOLLOW_UPS = {
    "reminder": (NoticeKind.REMINDER, "Reminder: your decision on {title}", "reminder_sent"),
    "escalation": (NoticeKind.ESCALATION, "Escalated to you: {title}", "escalated"),
    "deemed_warning": (
        NoticeKind.DEEMED_WARNING,
        "Deemed accepted soon unless you decide: {title}",
        "deemed_warning_sent",
    ),
}


def calendar_of(policy_calendar: dict) -> BusinessCalendar:
    return BusinessCalendar(
        country=policy_calendar.get("country"),
        subdivision=policy_calendar.get("subdivision"),
        timezone=policy_calendar.get("timezone") or "UTC",
        extra_holidays=tuple(
            datetime.fromisoformat(d).date() for d in policy_calendar.get("extra_holidays", [])
        ),
    )


def deadlines_for(policy: ApprovalPolicy, start: datetime) -> list[Deadline]:
    """The policy's sign-off deadlines from ``start``, on the engagement's business calendar."""
    calendar = calendar_of(policy.calendar)
    spans = {
        "reminder": policy.reminder_after,
        "escalation": policy.escalate_after,
        "deemed_acceptance": policy.deemed_acceptance_after,
        "expiry": policy.expire_after,
    }
    deadlines = []
    for kind, raw in spans.items():
        span = parse_span(raw)
        if span is None:
            continue
        at = deadline_after(start, span, calendar)
        label = f"{DEADLINE_LABELS[kind]} ({describe_span(span)})"
        if kind == "deemed_acceptance":
            deadlines += deemed_warning(policy, start, at, calendar)
        deadlines.append(Deadline(kind=kind, at=iso(at), label=label))
    return deadlines


def deemed_warning(
    policy: ApprovalPolicy, start: datetime, deemed_at: datetime, calendar: BusinessCalendar
) -> list[Deadline]:
    """The warning to silent client roles, the policy's span before deemed acceptance: none
    without client roles or a span (0 business days is none), nor when it would come no
    later than ``start`` (the approval request itself says when silence accepts)."""
    span = parse_span(policy.deemed_warning_before)
    if span is None or span.business_days == 0 or not policy.client_roles:
        return []
    at = deadline_before(deemed_at, span, calendar)
    if at <= start:
        return []
    label = f"{DEADLINE_LABELS['deemed_warning']} ({describe_span(span)} before deemed acceptance)"
    return [Deadline(kind="deemed_warning", at=iso(at), label=label)]


def load_run(session: Session, run_id: str) -> Run:
    """The run's row, locked for this transaction: a stage change in flight when the run is
    cancelled must see the way out's ``cancelled`` (and leave it), not overwrite it."""
    db_run = session.get(Run, run_id, with_for_update=True, populate_existing=True)
    if db_run is None:
        raise ApplicationError(
            f"run {run_id} is not recorded", type="RunNotFound", non_retryable=True
        )
    # The session's identity map holds rows weakly: kept here, a later ``get`` of this run in
    # the transaction (a notice's content) reuses the locked row instead of loading it again.
    session.info.setdefault("locked_runs", []).append(db_run)
    return db_run


def at_(text: str) -> datetime:
    return datetime.fromisoformat(text)


def record_decision_in(
    session: Session, notifier: Notifier, subject: Subject, decision: DecisionView
) -> list[int]:
    """Record a decision once (unique per run and role) with its audit event and its notices;
    the ids of the notices to send once the transaction commits."""
    load_run(session, subject.run_id)
    existing = session.scalar(
        select(Decision).where(Decision.run_id == subject.run_id, Decision.role == decision.role)
    )
    if existing is None:
        session.add(
            Decision(
                run_id=subject.run_id,
                role=decision.role,
                principal_id=decision.principal_id,
                decision=decision.decision,
                via=decision.via,
                comment=decision.comment,
                evidence_ids=decision.evidence_ids,
                at=at_(decision.at),
            )
        )
    run_audit(
        session,
        subject,
        actor=decision.principal_id or SYSTEM_ACTOR,
        kind="decision",
        at=at_(decision.at),
        data={
            "role": decision.role,
            "decision": decision.decision,
            "via": decision.via,
            "principal_id": decision.principal_id,
            "comment": decision.comment,
        },
        evidence=evidence_refs(session, decision.evidence_ids),
        dedupe_key=f"{subject.run_id}:decision:{decision.role}",
    )
    return notifier.queue(session, *decision_notice(session, subject, decision))


class ApprovalActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    @activity.defn(name="plan_deadlines")
    def plan_deadlines(self, req: PlanDeadlines) -> list[Deadline]:
        return deadlines_for(req.policy, at_(req.start))

    @activity.defn(name="record_decision")
    def record_decision(self, req: RecordDecision) -> None:
        with self._sessions.begin() as session:
            queued = record_decision_in(session, self._notifier, req.subject, req.decision)
        self._notifier.started(queued)

    @activity.defn(name="record_ignored_decision")
    def record_ignored_decision(self, req: RecordIgnoredDecision) -> None:
        subject, signal = req.subject, req.signal
        with self._sessions.begin() as session:
            run_audit(
                session,
                subject,
                actor=signal.principal_id,
                kind="decision_ignored",
                at=at_(req.at),
                data={"role": signal.role, "decision": signal.decision, "reason": req.reason},
                dedupe_key=f"{subject.run_id}:decision_ignored:{req.sequence}",
            )

    @activity.defn(name="notify")
    def notify(self, req: Notify) -> None:
        """Audit a reminder, deemed-acceptance warning or escalation and send one notice per
        recipient: a reminder or warning to the pending roles' approvers, an escalation to
        their escalation contacts, who may now decide; each with the recipient's signed link."""
        subject = req.subject
        kind, headline, audit_kind = FOLLOW_UPS[req.kind]
        grants = (
            subject.policy.escalation if kind == NoticeKind.ESCALATION else subject.policy.roles
        )
        recipients = {role: grants.get(role, []) for role in req.roles}
        with self._sessions.begin() as session:
            notice = follow_up(session, kind, subject, headline.format(title=subject.title))
            queued = self._notifier.queue(session, notice, to_recipients(recipients))
            run_audit(
                session,
                subject,
                kind=audit_kind,
                at=at_(req.at),
                data={"roles": req.roles, "recipients": recipients},
                dedupe_key=f"{subject.run_id}:{req.kind}",
            )
        self._notifier.started(queued)


def decision_notice(
    session: Session, subject: Subject, decision: DecisionView
) -> tuple[Notice, list[Recipient]]:
    """Every approver of the run hears of a decision (rows per deciding role: one each)."""
    verb = {"approve": "approved", "reject": "rejected"}.get(decision.decision, decision.decision)
    headline = f"{subject.title}: {decision.role} {verb}"
    detail = f"{decision.role} {verb} ({decision.via})" + (
        f": {decision.comment}" if decision.comment else ""
    )
    notice = follow_up(
        session, NoticeKind.DECISION_RECORDED, subject, headline, role=decision.role, detail=detail
    )
    principals = dict.fromkeys(p for ids in subject.policy.roles.values() for p in ids)
    return notice, [Recipient(p, decision.role) for p in principals]
