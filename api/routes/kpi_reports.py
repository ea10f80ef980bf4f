"""KPI reports about a billed bonus under clawback, and the state of its clawback watch.

A report is stored, then signalled to the watch (workflows/clawback_watch.py), which decides what
it means; the API only checks that a watch is there to receive it.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CallerDep, SessionDep, TemporalDep
from api.links import link
from api.models import ClawbackWatch as WatchOut
from api.models import KpiReportAccepted
from api.problems import Problem, invalid, not_found
from api.routes.evidence import link_evidence_or_422
from api.schemas import KpiReportIn
from api.views import watch_status_view
from db.models import KpiReport, Milestone, new_id
from domain.bonus import check_report
from domain.times import iso
from services.access import load_engagement
from services.runs import canonical_hash
from workflows.clawback_watch import ClawbackWatch, watch_id_for
from workflows.watch_contracts import KpiReportSignal, WatchStatus

router = APIRouter(prefix="/v1/milestones", tags=["clawbacks"])


@dataclass
class Target:
    milestone_id: str
    engagement_id: str
    body_hash: str
    earlier: KpiReport | None  # the report already stored under this Idempotency-Key

    @property
    def watch_id(self) -> str:
        return watch_id_for(self.milestone_id)


@router.post(
    "/{milestone_id}/kpi-reports",
    status_code=202,
    response_description="Stored and handed to the clawback watch.",
    responses={
        200: {
            "model": KpiReportAccepted,
            "description": "Stored before under this Idempotency-Key: the same report.",
        }
    },
)
async def post_kpi_report(
    milestone_id: str,
    body: KpiReportIn,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> KpiReportAccepted:
    """Store the report once and hand it to the watch; a retry with the same key changes nothing."""
    key = _required_key(idempotency_key)
    target = await run_in_threadpool(_target, session, caller, milestone_id, key, body)
    report = target.earlier
    if report is None:
        await _require_watching(temporal, target.watch_id)
        report = await run_in_threadpool(_store, session, caller, target, key, body)
    try:
        if report.outcome == "received":  # else the watch has checked it already
            await _handle(temporal, target.watch_id).signal(ClawbackWatch.report, _signal(report))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise Problem(
                503,
                "temporal-unavailable",
                "Report not delivered yet",
                "The report is recorded but its clawback watch could not be reached; retry "
                "with the same Idempotency-Key.",
            ) from exc
        if target.earlier is None:  # the watch ended between the check and the signal
            await run_in_threadpool(_forget, session, report)
            raise _not_watching("the clawback watch has just ended") from exc
    response.status_code = 202 if target.earlier is None else 200
    return KpiReportAccepted(
        report_id=report.id,
        milestone_id=target.milestone_id,
        watch_id=target.watch_id,
        status_url=link(request, "get_clawback", milestone_id=target.milestone_id),
    )


@router.get("/{milestone_id}/clawback", name="get_clawback")
async def get_clawback(
    milestone_id: str, session: SessionDep, caller: CallerDep, temporal: TemporalDep
) -> WatchOut:
    milestone = await run_in_threadpool(_visible_milestone, session, caller, milestone_id)
    watch_id = watch_id_for(milestone.id)
    if milestone.clawback is None:
        raise Problem(
            404, "not-found", "No clawback", f"Milestone {milestone.key} has no clawback terms."
        )
    try:
        status = await _handle(temporal, watch_id).query(ClawbackWatch.status)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Problem(
                404,
                "not-found",
                "No clawback watch",
                f"Milestone {milestone.key} is not watched yet: it is watched once billed.",
            ) from exc
        raise _unavailable() from exc
    return WatchOut.model_validate(watch_status_view(status))


def _required_key(value: str | None) -> str:
    if not value or not value.strip():
        raise Problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            "Send an Idempotency-Key header (at most 255 characters) with every KPI report.",
        )
    if len(value) > 255:
        raise Problem(
            400,
            "idempotency-key-too-long",
            "Idempotency-Key too long",
            "The Idempotency-Key header must be at most 255 characters.",
        )
    return value


def _visible_milestone(session: Session, caller: CallerDep, milestone_id: str) -> Milestone:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    load_engagement(session, milestone.engagement_id, caller)
    return milestone


def _target(
    session: Session, caller: CallerDep, milestone_id: str, key: str, body: KpiReportIn
) -> Target:
    milestone = _visible_milestone(session, caller, milestone_id)
    if caller.kind == "principal":
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            "KPI reports are posted with the admin token or an integration token.",
        )
    body_hash = canonical_hash(body.model_dump(mode="json"))
    earlier = session.scalar(
        select(KpiReport).where(
            KpiReport.milestone_id == milestone.id, KpiReport.idempotency_key == key
        )
    )
    target = Target(milestone.id, milestone.engagement_id, body_hash, earlier)
    if earlier is not None:
        if earlier.body_hash != body_hash:
            raise _key_reused()
        return target
    if milestone.clawback is None:
        raise Problem(
            409,
            "no-clawback",
            "Milestone has no clawback",
            f"Milestone {milestone.key} has no clawback terms: there is nothing to report on.",
        )
    kpi = milestone.clawback["kpi"]
    check = check_report(kpi["metric"], kpi["op"], kpi["threshold"], body.kpis)
    if kpi["metric"] in body.kpis and check.outcome == "ignored":
        raise invalid(f"kpis.{kpi['metric']}", check.detail)
    return target


async def _require_watching(temporal: Client, watch_id: str) -> None:
    try:
        status = await _handle(temporal, watch_id).query(ClawbackWatch.status)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _not_watching("the bonus is not billed yet: its watch starts then") from exc
        raise _unavailable() from exc
    if status.stage != "watching":
        raise _not_watching(f"the clawback watch is over ({status.stage})")


def _store(
    session: Session, caller: CallerDep, target: Target, key: str, body: KpiReportIn
) -> KpiReport:
    link_evidence_or_422(session, body.evidence_ids, target.engagement_id, caller)
    report = KpiReport(
        id=new_id("kpr"),
        milestone_id=target.milestone_id,
        idempotency_key=key,
        body_hash=target.body_hash,
        body=body.model_dump(mode="json"),
        watch_id=target.watch_id,
        actor=caller.actor,
    )
    session.add(report)
    try:
        session.commit()
    except IntegrityError:  # a concurrent twin stored it first
        session.rollback()
        twin = session.scalars(
            select(KpiReport).where(
                KpiReport.milestone_id == target.milestone_id, KpiReport.idempotency_key == key
            )
        ).one()
        if twin.body_hash != target.body_hash:
            raise _key_reused() from None
        return twin
    return report


def _forget(session: Session, report: KpiReport) -> None:
    session.delete(report)
    session.commit()


def _signal(report: KpiReport) -> KpiReportSignal:
    received_at = iso(report.created_at)
    assert received_at is not None
    return KpiReportSignal(
        report_id=report.id,
        kpis=dict(report.body["kpis"]),
        received_at=received_at,
        evidence_ids=list(report.body["evidence_ids"]),
    )


def _handle(temporal: Client, watch_id: str) -> WorkflowHandle[ClawbackWatch, WatchStatus]:
    return temporal.get_workflow_handle_for(ClawbackWatch.run, watch_id)


def _key_reused() -> Problem:
    return Problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different body; use a new key.",
    )


def _not_watching(why: str) -> Problem:
    return Problem(409, "not-watching", "No clawback watch running", f"Not accepted: {why}.")


def _unavailable() -> Problem:
    return Problem(
        503,
        "temporal-unavailable",
        "Clawback watch unavailable",
        "The clawback watch cannot be reached right now; retry shortly.",
    )
