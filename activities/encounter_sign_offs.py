"""Activities of an encounter batch's sign-off: its stage (approvers told when it awaits them;
the encounters released for billing once it is approved), and its end — billed, or rejected /
expired with the batch's encounters marked so.

Each runs in one transaction and finds its earlier effect on a retry (the run has ended, the
encounters have moved on, the audit's dedupe keys).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.approval import at_, deadlines_for, load_run
from activities.audit import run_audit
from activities.delivery import Notifier
from db.encounters import Encounter
from domain.lifecycle import TERMINAL_STAGES
from services import notices
from services.encounter_sign_offs import mark_not_signed, release_signed
from workflows.encounter_sign_off import EncountersResult, EncountersStep


class EncounterSignOffActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], notifier: Notifier | None = None
    ) -> None:
        self._sessions = session_factory
        self._notifier = notifier or Notifier()

    def all(self) -> list[Callable[..., Any]]:
        """The worker registers these (``plan_deadlines`` and decisions are ApprovalActivities',
        billing is ``bill_encounter_chunk``)."""
        return [self.encounter_sign_off_stage, self.end_encounter_sign_off]

    @activity.defn(name="encounter_sign_off_stage")
    def encounter_sign_off_stage(self, req: EncountersStep) -> None:
        batch, stage = req.batch, req.stage
        assert stage is not None, "encounter_sign_off_stage is called with the stage to record"
        with self._sessions.begin() as session:
            run = load_run(session, batch.run_id)
            if run.stage in TERMINAL_STAGES:
                return  # ended meanwhile (cancelled): a late stage change must not revive it
            run.stage = stage
            data: dict[str, Any] = {"stage": stage, "batch_id": batch.batch_id}
            if stage == "billing":
                data["released"] = release_signed(session, batch.batch_id)
            run_audit(
                session,
                batch,
                kind="stage_changed",
                at=at_(req.at),
                data=data,
                dedupe_key=f"{batch.run_id}:stage:{stage}",
            )
            queued = []
            if stage == "awaiting_approval":
                notice = notices.approval_requested(
                    batch.subject,
                    "encounters",
                    deadlines_for(batch.policy, at_(req.at)),
                    amounts=[
                        (f"{batch.count} encounters, payer {batch.payer_id}", batch.total_minor)
                    ],
                    detail=f"Encounter batch {batch.batch_id}: {batch.count} encounters "
                    f"(ids sha256 {batch.encounter_ids_sha256[:12]}…) bill once every role "
                    "approves.",
                )
                queued = self._notifier.queue(
                    session, notice, notices.recipients(batch.policy.roles)
                )
        self._notifier.started(queued)

    @activity.defn(name="end_encounter_sign_off")
    def end_encounter_sign_off(self, req: EncountersStep) -> EncountersResult:
        """Approved (after billing): the run ends ``billed`` with the invoices billed on.
        Rejected or expired: the batch's encounters are marked so and never bill."""
        batch = req.batch
        stage = "billed" if req.outcome == "approved" else (req.outcome or "rejected")
        with self._sessions.begin() as session:
            run = load_run(session, batch.run_id)
            invoice_ids = _invoices_of(session, batch.batch_id)
            if run.stage in TERMINAL_STAGES:  # a retry after the work committed
                return EncountersResult(run.stage, run.outcome_detail, invoice_ids)
            data: dict[str, Any] = {"batch_id": batch.batch_id, "stage": stage}
            if stage == "billed":
                detail = f"signed off; {batch.count} encounters billed"
                data["invoice_ids"] = invoice_ids
                kind = "encounters_signed_off"
            else:
                detail = req.detail or f"{stage} at sign-off"
                data["marked"] = mark_not_signed(session, batch.batch_id, stage)
                data["detail"] = req.detail
                kind = f"encounters_sign_off_{stage}"
            data["encounter_ids_sha256"] = batch.encounter_ids_sha256
            run.stage = run.outcome = stage
            run.outcome_detail = detail
            run.invoice_id = invoice_ids[0] if invoice_ids else None
            run.closed_at = datetime.fromisoformat(req.at)
            run_audit(
                session,
                batch,
                kind=kind,
                at=at_(req.at),
                data=data,
                dedupe_key=f"{batch.run_id}:{stage}",
            )
            return EncountersResult(stage, detail, invoice_ids)


def _invoices_of(session: Session, batch_id: str) -> list[str]:
    found = session.scalars(
        select(Encounter.invoice_id)
        .where(Encounter.batch_id == batch_id, Encounter.invoice_id.is_not(None))
        .distinct()
    )
    return sorted(i for i in found if i)
