"""Runs: triggers that start them, the decisions that sign them off, cancelling, reading, and
the audit trail they leave."""

from collections.abc import Mapping, Sequence

from api.models import (
    Approval,
    AuditCheck,
    AuditEvent,
    Page,
    RunAccepted,
    RunItem,
    RunStatus,
)
from tollgate_client.calls import Call, given, model, operation, segment


class RunOperations:
    @operation
    def trigger(
        self,
        milestone_id: str,
        *,
        idempotency_key: str,
        source: str | None = None,
        completion_percent: str | None = None,
        kpis: Mapping[str, str] | None = None,
        evidence_ids: Sequence[str] | None = None,
        external_ref: str | None = None,
        note: str | None = None,
        confirmation_id: str | None = None,
        period: str | None = None,
    ) -> Call[RunAccepted]:
        """Report a milestone done: starts its run, once per ``idempotency_key`` (sending the
        same key again answers the same run). Percentages and KPI values are decimal strings."""
        body = given(
            source=source,
            completion_percent=completion_percent,
            kpis=dict(kpis) if kpis is not None else None,
            evidence_ids=list(evidence_ids) if evidence_ids is not None else None,
            external_ref=external_ref,
            note=note,
            confirmation_id=confirmation_id,
            period=period,
        )
        return Call(
            "POST",
            f"/v1/milestones/{segment(milestone_id)}/triggers",
            model(RunAccepted),
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )

    @operation
    def get_run(self, run_id: str) -> Call[RunStatus]:
        return Call("GET", f"/v1/runs/{segment(run_id)}", model(RunStatus))

    @operation
    def list_runs(
        self,
        *,
        stage: str | None = None,
        engagement_id: str | None = None,
        milestone_id: str | None = None,
        older_than: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[RunItem]]:
        """Runs, oldest first; ``older_than`` is an ISO 8601 duration (``P3D``)."""
        params = {
            "stage": stage,
            "engagement_id": engagement_id,
            "milestone_id": milestone_id,
            "older_than": older_than,
            "cursor": cursor,
            "limit": limit,
        }
        return Call("GET", "/v1/runs", model(Page[RunItem]), params=params)

    @operation
    def decide(
        self,
        run_id: str,
        role: str,
        decision: str,
        *,
        comment: str | None = None,
        evidence_ids: Sequence[str] | None = None,
    ) -> Call[RunStatus]:
        """Approve or reject (``decision``) for ``role``, as the client's token's principal."""
        body = given(
            role=role,
            decision=decision,
            comment=comment,
            evidence_ids=list(evidence_ids) if evidence_ids is not None else None,
        )
        path = f"/v1/runs/{segment(run_id)}/decisions"
        return Call("POST", path, model(RunStatus), json=body)

    @operation
    def cancel_run(self, run_id: str, reason: str) -> Call[RunStatus]:
        """End a run as cancelled (an admin's call; refused with 409 past sign-off)."""
        path = f"/v1/runs/{segment(run_id)}/cancel"
        return Call("POST", path, model(RunStatus), json={"reason": reason})

    @operation
    def my_approvals(self) -> Call[Page[Approval]]:
        """The sign-offs awaiting the client's token's principal (one bounded page)."""
        return Call("GET", "/v1/me/approvals", model(Page[Approval]))

    @operation
    def get_closeout(self, engagement_id: str) -> Call[RunStatus]:
        path = f"/v1/engagements/{segment(engagement_id)}/closeout"
        return Call("GET", path, model(RunStatus))

    @operation
    def engagement_audit(
        self, engagement_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[AuditEvent]]:
        """The engagement's hash-chained audit trail, oldest first."""
        path = f"/v1/engagements/{segment(engagement_id)}/audit"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[AuditEvent]), params=params)

    @operation
    def milestone_audit(
        self, milestone_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[AuditEvent]]:
        path = f"/v1/milestones/{segment(milestone_id)}/audit"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[AuditEvent]), params=params)

    @operation
    def verify_audit(self, engagement_id: str) -> Call[AuditCheck]:
        """Recompute the engagement's audit chain: ``ok``, or the first event that breaks it."""
        path = f"/v1/engagements/{segment(engagement_id)}/audit/verify"
        return Call("GET", path, model(AuditCheck))
