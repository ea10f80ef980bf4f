"""What the caller (an approver, by its principal token) has to decide, each with a signed link."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from api.deps import CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import Approval, Page
from api.pages.approval_view import heading
from api.problems import Problem
from api.views import run_status_view
from db.models import Decision, Run
from domain.times import iso
from services.approval_links import Grant, approval_url
from services.run_signers import Capacity, awaiting
from services.runs import query_status

router = APIRouter(prefix="/v1/me", tags=["me"])
# How long each run's status query may take before its recorded state is used instead.
QUERY_PATIENCE_SECONDS = 3
# A link's lifetime when the run has no expiry (its policy sets none): re-list to get a new one.
LINK_LIFETIME_WITHOUT_EXPIRY = timedelta(days=30)


@router.get("/approvals")
async def my_approvals(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Page[Approval]:
    """Runs awaiting approval where a role the caller holds is pending, or a role it is an
    escalation contact for is pending and escalated. Oldest first, in one page (the runs
    awaiting the caller now): ``next_cursor`` is always null."""
    if caller.kind != "principal":
        raise Problem(403, "forbidden", "Forbidden", "This lists an approver's own sign-offs.")
    if not settings.link_secret:
        raise Problem(
            503,
            "links-unavailable",
            "Approval links unavailable",
            "No link secret is configured (TOLLGATE_LINK_SECRET), so no approval link is issued.",
        )
    runs, decided = await run_in_threadpool(_candidates, session, caller.id)
    statuses = await asyncio.gather(*(_status(temporal, run, decided) for run in runs))
    now = datetime.now(UTC)
    items = []
    for run, status in zip(runs, statuses, strict=True):
        policy = run.snapshot.get("policy", {})
        for role in status["pending_roles"]:
            if caller.id in policy.get("roles", {}).get(role, []):
                capacity = Capacity.APPROVER
            elif caller.id in policy.get("escalation", {}).get(role, []) and role in status.get(
                "escalated_roles", []
            ):
                capacity = Capacity.ESCALATION
            else:
                continue
            expires = status["deadlines"].get("expire_at")
            expires_at = _instant(expires) if expires else now + LINK_LIFETIME_WITHOUT_EXPIRY
            grant = Grant(run.id, role, caller.id, expires_at)
            items.append(
                {
                    "run_id": run.id,
                    "kind": run.kind,
                    "engagement_id": run.engagement_id,
                    "milestone_id": run.milestone_id,
                    "title": heading(run),
                    "role": role,
                    "as": capacity,
                    "deadlines": status["deadlines"],
                    "link": approval_url(settings.public_url, settings.link_secret, grant),
                    "link_expires_at": iso(expires_at),
                    "status_url": link(request, "get_run", run_id=run.id),
                }
            )
    return Page[Approval](items=items, next_cursor=None)


def _candidates(session: Session, principal_id: str) -> tuple[list[Run], set[tuple[str, str]]]:
    """Runs awaiting approval whose frozen policy names the principal (as approver or contact),
    and the (run, role) pairs the books show as decided."""
    runs = awaiting(session, principal_id)
    decided = session.execute(
        select(Decision.run_id, Decision.role).where(Decision.run_id.in_([r.id for r in runs]))
    )
    pairs = {(run_id, role) for run_id, role in decided}
    session.commit()
    return runs, pairs


async def _status(temporal: Client, run: Run, decided: set[tuple[str, str]]) -> dict[str, Any]:
    """The run's own status; when it cannot answer, the books: every role without a recorded
    decision is pending and none is known to be escalated."""
    try:
        async with asyncio.timeout(QUERY_PATIENCE_SECONDS):
            return run_status_view(await query_status(temporal, run.id))
    except (RPCError, RuntimeError, WorkflowQueryFailedError, TimeoutError):
        roles = run.snapshot.get("policy", {}).get("roles", {})
        pending = [role for role in roles if (run.id, role) not in decided]
        return {"pending_roles": pending, "escalated_roles": [], "deadlines": {}}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
