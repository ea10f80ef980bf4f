"""What the approver page shows: the run as its workflow reports it (or as the books record it when
Temporal cannot answer), with the engagement, the delivery, the evidence and the deadlines, read
in the engagement calendar's time zone."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Customer, Decision, Engagement, Evidence, Principal, Run, Trigger
from domain.lifecycle import TERMINAL_STAGES, UNBILLED_ENDS, RunStage
from domain.money import format_minor
from services.approval_links import Grant

DEADLINE_LABELS = {
    "reminder_at": "Reminder",
    "escalate_at": "Escalation to the role's escalation contacts",
    "deemed_warning_at": "Deemed-acceptance warning",
    "deemed_acceptance_at": "Deemed acceptance",
    "expire_at": "Expiry",
}
SUBJECT_NOUNS = {"milestone": "milestone", "closeout": "close-out", "change_order": "change order"}


@dataclass
class ApprovalPage:
    """Everything the template shows; ``can_decide`` alone decides whether the form is shown."""

    role: str
    principal_name: str
    kind: str
    noun: str
    heading: str
    engagement: str
    customer: str
    stage: str
    subject_lines: list[str]
    delivered: dict[str, Any] | None
    criteria: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    amounts: list[tuple[str, str]]
    decisions: list[dict[str, str]]
    deadlines: list[tuple[str, str]]
    deemed_sentence: str | None
    recorded: str | None
    notice: str | None
    can_decide: bool
    # For an escalation contact once the role is escalated: why this person is asked.
    escalated_sentence: str | None
    live: bool
    timezone: str
    errors: dict[str, str] = field(default_factory=dict)


def run_evidence_ids(session: Session, run: Run, status: dict[str, Any]) -> list[str]:
    """The evidence a link to this run may download: the trigger's and every decision's."""
    ids = list(run.snapshot.get("evidence_ids", [])) if run.kind == "milestone" else []
    recorded = session.scalars(select(Decision.evidence_ids).where(Decision.run_id == run.id))
    for cited in [*recorded, *(d.get("evidence_ids", []) for d in status["decisions"])]:
        ids += cited
    return list(dict.fromkeys(ids))


def build_page(
    session: Session, grant: Grant, run: Run, status: dict[str, Any], live: bool
) -> ApprovalPage:
    engagement = session.get_one(Engagement, run.engagement_id)
    customer = session.get_one(Customer, engagement.customer_id)
    policy = run.snapshot.get("policy", {})
    zone = ZoneInfo(policy.get("calendar", {}).get("timezone") or "UTC")
    names = _names(session, grant, status)
    noun = SUBJECT_NOUNS.get(run.kind, "run")
    stage = status["stage"]
    pending = grant.role in status["pending_roles"]
    escalation_only = grant.principal_id not in policy.get("roles", {}).get(grant.role, [])
    escalated = grant.role in status["escalated_roles"]
    recorded_deadlines = status.get("deadlines") or {}
    deadlines = {k: recorded_deadlines[k] for k in DEADLINE_LABELS if recorded_deadlines.get(k)}

    mine = next((d for d in status["decisions"] if d["role"] == grant.role), None)
    recorded = _recorded(mine, grant, names, zone) if mine else None
    notice = None
    can_decide = False
    if not live:
        notice = "The run cannot be reached right now, so no decision can be taken. Try again soon."
    elif stage in TERMINAL_STAGES:
        detail = f": {status['outcome_detail']}" if status.get("outcome_detail") else ""
        notice = f"This {noun} is closed ({stage.replace('_', ' ')}{detail})."
    elif mine is None and stage != RunStage.AWAITING_APPROVAL:
        notice = f"Nothing to decide yet: the {noun} is {stage.replace('_', ' ')}."
    elif pending and escalation_only and not escalated:
        when = deadlines.get("escalate_at")
        notice = (
            f"You are an escalation contact for {grant.role}: you may decide only once the role "
            f"is escalated{' (' + local(when, zone) + ')' if when else ''}."
        )
    else:
        can_decide = pending

    deemed = deadlines.get("deemed_acceptance_at")
    client_role = grant.role in policy.get("client_roles", [])
    return ApprovalPage(
        role=grant.role,
        principal_name=names.get(grant.principal_id, grant.principal_id),
        kind=run.kind,
        noun=noun,
        heading=heading(run),
        engagement=engagement.name,
        customer=customer.name,
        stage=stage,
        subject_lines=_subject_lines(run),
        delivered=_delivered(session, run),
        criteria=_criteria(run, status),
        evidence=_evidence(session, run_evidence_ids(session, run, status)),
        amounts=_amounts(status.get("amounts"), engagement.currency, stage in UNBILLED_ENDS),
        decisions=[_decision(d, names, zone) for d in status["decisions"]],
        deadlines=[(DEADLINE_LABELS.get(k, k), local(v, zone)) for k, v in deadlines.items()],
        deemed_sentence=(
            f"If you do nothing, this {noun} is deemed accepted on {local(deemed, zone)}."
            if deemed and client_role and pending and live
            else None
        ),
        recorded=recorded,
        notice=notice,
        can_decide=can_decide,
        escalated_sentence=(
            f"No one for {grant.role} decided in time, so the decision was escalated to you: "
            f"yours counts for {grant.role}."
            if can_decide and escalation_only and escalated
            else None
        ),
        live=live,
        timezone=str(zone),
    )


def local(instant: str, zone: ZoneInfo) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(zone)
    return moment.strftime("%A %-d %B %Y at %H:%M %Z")


def _names(session: Session, grant: Grant, status: dict[str, Any]) -> dict[str, str]:
    wanted = {grant.principal_id} | {d["principal_id"] for d in status["decisions"]} - {None}
    rows = session.execute(select(Principal.id, Principal.name).where(Principal.id.in_(wanted)))
    return {principal_id: name for principal_id, name in rows}


def _recorded(mine: dict[str, Any], grant: Grant, names: dict[str, str], zone: ZoneInfo) -> str:
    verb = "approved" if mine["decision"] == "approve" else "rejected"
    when = local(mine["at"], zone)
    if mine["via"] == "deemed":
        return f"The {grant.role} role was deemed to have accepted on {when}."
    if mine["principal_id"] == grant.principal_id:
        return f"You {verb} on {when}."
    who = names.get(mine["principal_id"], mine["principal_id"])
    return f"{who} {verb} for {grant.role} on {when}."


def heading(run: Run) -> str:
    """What the sign-off is about, in a line, from the run's frozen input."""
    if run.kind == "closeout":
        return f"Close-out of {run.snapshot.get('engagement_name', run.engagement_id)}"
    if run.kind == "change_order":
        return f"Change order {run.snapshot.get('change_order_id', '')}".strip()
    if run.kind == "encounters":
        name = run.snapshot.get("engagement_name", run.engagement_id)
        return f"Encounter batch {run.snapshot.get('batch_id', '')} of {name}"
    return f"{run.snapshot.get('milestone_key', '')}: {run.snapshot.get('milestone_name', '')}"


def _subject_lines(run: Run) -> list[str]:
    snap = run.snapshot
    if run.kind == "closeout":
        lines = [f"Waive {w['milestone_key']}: {w['reason']}" for w in snap.get("waivers", [])]
        return lines + ([f"Note: {snap['note']}"] if snap.get("note") else [])
    if run.kind == "change_order":
        changes = snap.get("changes", {})
        lines = [f"Reason: {snap.get('reason', '')}"]
        lines += [f"Update {u.get('milestone')}" for u in changes.get("update", [])]
        lines += [f"Add {a.get('key')}: {a.get('name', '')}" for a in changes.get("add", [])]
        return lines + [f"Remove {key}" for key in changes.get("remove", [])]
    if run.kind == "encounters":
        total = format_minor(snap["total_minor"], snap["currency"])
        return [
            f"{snap['count']} encounters, {total} {snap['currency']}, payer {snap['payer_id']}",
            f"Encounter ids sha256 {snap['encounter_ids_sha256']}",
        ]
    return []


def _delivered(session: Session, run: Run) -> dict[str, Any] | None:
    if run.kind != "milestone" or run.trigger_id is None:
        return None
    trigger = session.get(Trigger, run.trigger_id)
    body = trigger.body if trigger else {}
    return {
        "note": body.get("note"),
        "external_ref": body.get("external_ref"),
        "source": body.get("source"),
        "completion_percent": run.snapshot.get("completion_percent", "100"),
        "received_at": trigger.created_at if trigger else None,
    }


def _criteria(run: Run, status: dict[str, Any]) -> list[dict[str, Any]]:
    """Each criterion with the KPI reported against it and its result (None: approvers decide)."""
    results = {c["id"]: c for c in status.get("criteria", [])}
    kpis = run.snapshot.get("kpis", {})
    shown = []
    for criterion in run.snapshot.get("criteria", []):
        result = results.get(criterion["id"], {})
        metric = criterion.get("metric")
        shown.append(
            {
                "description": criterion.get("description") or criterion["id"],
                "target": f"{metric} {criterion['op']} {criterion['threshold']}" if metric else "",
                "reported": kpis.get(metric, "not reported") if metric else "",
                "passed": result.get("passed"),
                "detail": result.get("detail", ""),
            }
        )
    return shown


def _evidence(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    rows = {e.id: e for e in session.scalars(select(Evidence).where(Evidence.id.in_(ids)))}
    return [
        {
            "id": e.id,
            "filename": e.filename,
            "size": e.size,
            "sha256": e.sha256,
            "description": e.description,
        }
        for e in (rows[i] for i in ids if i in rows)
    ]


def _amounts(
    amounts: dict[str, int] | None, currency: str, unbilled: bool
) -> list[tuple[str, str]]:
    if not amounts:
        return []
    labels = (("Gross", "gross_minor"), ("Retention withheld", "retention_minor"))
    shown = [(label, amounts[key]) for label, key in labels]
    net = "Net (nothing was invoiced)" if unbilled else "Net to invoice now"
    shown.append((net, amounts["net_minor"]))
    return [(label, f"{format_minor(value, currency)} {currency}") for label, value in shown]


def _decision(d: dict[str, Any], names: dict[str, str], zone: ZoneInfo) -> dict[str, str]:
    who = "nobody (deemed)" if d["via"] == "deemed" else names.get(d["principal_id"], "")
    return {
        "role": d["role"],
        "decision": "approved" if d["decision"] == "approve" else "rejected",
        "who": who or str(d["principal_id"]),
        "via": d["via"],
        "comment": d.get("comment") or "",
        "at": local(d["at"], zone),
    }
