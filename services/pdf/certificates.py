"""The sign-off certificate of a milestone run: what was claimed, what the criteria said, who
decided what and when (in the engagement's time zone), the evidence with its sha256, and the
run's audit events with their hashes. The document a firm attaches in a dispute."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEvent, Customer, Decision, Engagement, Invoice, Principal, Run, Trigger
from domain.lifecycle import TERMINAL_STAGES, RunStage
from services.errors import Problem, not_found
from services.pdf.model import (
    Anchor,
    DocumentContext,
    EvidenceItem,
    Issuer,
    anchor,
    engagement_zone,
    evidence_items,
    local_time,
)

VIA_LABELS = {
    "approver": "Approver",
    "escalation": "Escalation contact",
    "deemed": "Deemed (no answer in time)",
}
SIGNED_OFF_STAGES = {RunStage.BILLING, RunStage.BILLED}


@dataclass(frozen=True)
class CriterionRow:
    id: str
    description: str
    result: str  # Passed | Failed | Judged by the approvers
    detail: str


@dataclass(frozen=True)
class DecisionRow:
    role: str
    who: str
    via: str
    decision: str
    at: str
    comment: str
    evidence: list[EvidenceItem]


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: str
    kind: str
    actor: str
    hash: str


@dataclass(frozen=True)
class Certificate:
    run_id: str
    issuer: Issuer
    customer: str
    engagement: str
    time_zone: str
    milestone: str
    milestone_kind: str
    currency: str
    fee_minor: int
    completion_percent: str
    triggered: str  # "<time> by <actor>"
    stage: str
    outcome: str
    amounts: list[tuple[str, int]]  # (label, minor units): billed gross, retention, net
    invoice: str | None
    criteria: list[CriterionRow]
    decisions: list[DecisionRow]
    evidence: list[EvidenceItem]
    events: list[EventRow]
    anchor: Anchor | None
    watermark: str | None  # "IN PROGRESS" | "NOT SIGNED OFF"

    template = "certificate.html.j2"

    @property
    def filename(self) -> str:
        return f"certificate-{self.run_id}.pdf"

    @property
    def title(self) -> str:
        return "Sign-off certificate"

    @property
    def created(self) -> None:
        return None  # the events say when; the file carries no date of its own


def certificate_run(session: Session, run_id: str) -> Run:
    """The run, if it is one a certificate can be issued for (a milestone's run)."""
    run = session.get(Run, run_id)
    if run is None:
        raise not_found("Run", run_id)
    if run.milestone_id is None:
        raise Problem(
            409,
            "no-certificate",
            "No certificate for this run",
            f"Run {run_id} is a {run.kind} run: certificates are issued for milestone runs.",
        )
    return run


def certificate(session: Session, run_id: str, context: DocumentContext) -> Certificate:
    run = certificate_run(session, run_id)
    snapshot = run.snapshot
    engagement = session.get_one(Engagement, run.engagement_id)
    zone = engagement_zone(engagement)
    trigger = session.get(Trigger, run.trigger_id) if run.trigger_id else None
    decisions = session.scalars(
        select(Decision).where(Decision.run_id == run.id).order_by(Decision.at, Decision.id)
    ).all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.run_id == run.id).order_by(AuditEvent.seq)
    ).all()
    names = _names(session, {d.principal_id for d in decisions if d.principal_id})
    cited = [*snapshot.get("evidence_ids", []), *(e for d in decisions for e in d.evidence_ids)]
    invoice = session.get(Invoice, run.invoice_id) if run.invoice_id else None
    currency = snapshot["currency"]
    return Certificate(
        run_id=run.id,
        issuer=context.issuer,
        customer=session.get_one(Customer, engagement.customer_id).name,
        engagement=f"{engagement.name} ({engagement.id})",
        time_zone=str(zone),
        milestone=f"{snapshot['milestone_name']} ({snapshot['milestone_key']})",
        milestone_kind=snapshot.get("kind", "standard").replace("_", " "),
        currency=currency,
        fee_minor=snapshot["fee_minor"],
        completion_percent=snapshot.get("completion_percent", "100"),
        triggered=(
            f"{local_time(trigger.created_at, zone)} by {trigger.actor}" if trigger else "-"
        ),
        stage=run.stage.replace("_", " "),
        outcome=run.outcome_detail or run.outcome or "-",
        amounts=[
            (label, amount)
            for label, amount in (
                ("Billed (gross)", run.gross_minor),
                ("Retention withheld", run.retention_minor),
                ("Net invoiced", run.net_minor),
            )
            if amount is not None
        ],
        invoice=(invoice.number or f"draft {invoice.id}") if invoice else None,
        criteria=_criteria(snapshot.get("criteria", []), events),
        decisions=[
            DecisionRow(
                role=d.role,
                who=f"{names[d.principal_id]} ({d.principal_id})"
                if d.principal_id in names
                else (d.principal_id or "-"),
                via=VIA_LABELS.get(d.via, d.via),
                decision=d.decision,
                at=local_time(d.at, zone),
                comment=d.comment or "",
                evidence=evidence_items(session, d.evidence_ids),
            )
            for d in decisions
        ],
        evidence=evidence_items(session, cited),
        events=[EventRow(e.seq, local_time(e.at, zone), e.kind, e.actor, e.hash) for e in events],
        anchor=anchor(context, engagement, events[-1]) if events else None,
        watermark=_watermark(run.stage),
    )


def _criteria(defined: list[dict], events: list[AuditEvent]) -> list[CriterionRow]:
    """Each criterion as the run's ``criteria_evaluated`` event judged it."""
    evaluated = next((e for e in events if e.kind == "criteria_evaluated"), None)
    results = {r["id"]: r for r in (evaluated.data.get("results", []) if evaluated else [])}
    rows = []
    for criterion in defined:
        result = results.get(criterion["id"], {})
        passed = result.get("passed")
        verdict = {True: "Passed", False: "Failed"}.get(passed, "Judged by the approvers")
        rows.append(
            CriterionRow(
                criterion["id"],
                criterion.get("description") or "",
                verdict,
                result.get("detail", ""),
            )
        )
    return rows


def _names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Principal.id, Principal.name).where(Principal.id.in_(ids)))
    return {row.id: row.name for row in rows}


def _watermark(stage: str) -> str | None:
    if stage in SIGNED_OFF_STAGES:
        return None
    return "NOT SIGNED OFF" if stage in TERMINAL_STAGES else "IN PROGRESS"
