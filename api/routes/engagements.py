"""Engagements: created by the admin (``services.engagements`` holds the rules), read by anyone
it names, and the integration tokens that post its triggers."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.deps import AdminDep, CallerDep, SessionDep, hash_token
from api.models import Engagement, EngagementAsOf
from api.models import EngagementVersion as VersionOut
from api.models import IntegrationToken as TokenOut
from api.problems import Problem
from api.schemas import EngagementIn
from api.views import engagement_version_view
from db.audit import append_event
from db.models import EngagementVersion, IntegrationToken, new_id
from services import engagements
from services.access import load_engagement

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])


# Returns the view (its model validates it on the way out): tests build fixtures by calling it.
@router.post("", status_code=status.HTTP_201_CREATED, response_model=Engagement)
def create_engagement(body: EngagementIn, session: SessionDep, caller: AdminDep) -> dict[str, Any]:
    engagement = engagements.create_engagement(session, caller, body)
    return engagements.engagement_view(session, engagement)


@router.get("/{engagement_id}", response_model=EngagementAsOf, response_model_exclude_unset=True)
def get_engagement(
    engagement_id: str,
    session: SessionDep,
    caller: CallerDep,
    version: Annotated[
        int | None,
        Query(gt=0, le=2**31 - 1, description="Show the engagement as it stood at this version."),
    ] = None,
) -> Engagement | VersionOut:
    """The engagement now, or as it stood at ``version`` (the keys that version was stored
    with)."""
    engagement = load_engagement(session, engagement_id, caller)
    if version is None:
        return Engagement.model_validate(engagements.engagement_view(session, engagement))
    stored = session.get(EngagementVersion, (engagement.id, version))
    if stored is None:
        raise Problem(
            404,
            "not-found",
            "Version not found",
            f"Engagement {engagement.id} has no version {version}; "
            f"its current version is {engagement.version}.",
        )
    return VersionOut.model_validate(engagement_version_view(stored))


@router.post("/{engagement_id}/integration-tokens", status_code=status.HTTP_201_CREATED)
def create_integration_token(engagement_id: str, session: SessionDep, caller: AdminDep) -> TokenOut:
    """A token that may post triggers for this engagement only; shown once, stored hashed."""
    engagement = load_engagement(session, engagement_id, caller)
    token = f"tgi_{secrets.token_urlsafe(32)}"
    record = IntegrationToken(
        id=new_id("itk"), engagement_id=engagement.id, token_hash=hash_token(token)
    )
    session.add(record)
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="integration_token_created",
        data={"token_id": record.id},
    )
    session.commit()
    return TokenOut(id=record.id, engagement_id=engagement.id, token=token)
