"""Inbound sources for admins: register one for an engagement (its URL and signing secret),
read it, rotate its secret, deactivate it, and read its delivery log."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status
from pydantic import Field, StrictInt
from sqlalchemy import select

from api.deps import AdminDep, SessionDep, SettingsDep
from api.links import link
from api.models import Delivery, Page, Source, SourceWithSecret
from api.problems import not_found
from api.routes.listings import Cursor, Limit, keyset_page
from db.sources import InboundSource, SourceDelivery
from services import sources
from services.access import load_engagement
from services.deliveries import delivery_view
from services.fields import Strict
from services.presets import SourceIn

router = APIRouter(tags=["sources"])


class RotateIn(Strict):
    # How long the current secret keeps verifying beside the new one (0: not at all).
    overlap_hours: Annotated[StrictInt, Field(ge=0, le=sources.MAX_OVERLAP_HOURS)] = 24


@router.post("/v1/engagements/{engagement_id}/sources", status_code=status.HTTP_201_CREATED)
def create_source(
    engagement_id: str,
    body: SourceIn,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
) -> SourceWithSecret:
    """Register a source; its signing secret is in this response only."""
    issued = sources.register(session, caller, engagement_id, body, settings.link_secret)
    return SourceWithSecret.model_validate(
        {**_view(request, issued.source), "secret": issued.secret}
    )


@router.get("/v1/engagements/{engagement_id}/sources")
def list_sources(
    engagement_id: str,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[Source]:
    """The engagement's sources, oldest first."""
    engagement = load_engagement(session, engagement_id, caller)
    query = select(InboundSource).where(InboundSource.engagement_id == engagement.id)
    rows, next_cursor = keyset_page(
        session, query, InboundSource.created_at, InboundSource.id, cursor, limit
    )
    return Page[Source](items=[_view(request, s) for s in rows], next_cursor=next_cursor)


@router.get("/v1/sources/{source_id}")
def get_source(source_id: str, request: Request, session: SessionDep, _: AdminDep) -> Source:
    source = session.get(InboundSource, source_id)
    if source is None:
        raise not_found("Source", source_id)
    return Source.model_validate(_view(request, source))


@router.post("/v1/sources/{source_id}/rotate-secret")
def rotate_secret(
    source_id: str,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    body: Annotated[RotateIn | None, Body()] = None,
) -> SourceWithSecret:
    """A new signing secret, in this response only; the old one keeps verifying for
    ``overlap_hours`` (default 24)."""
    overlap = (body or RotateIn()).overlap_hours
    issued = sources.rotate(session, caller, source_id, overlap, settings.link_secret)
    return SourceWithSecret.model_validate(
        {**_view(request, issued.source), "secret": issued.secret}
    )


@router.delete("/v1/sources/{source_id}")
def deactivate_source(
    source_id: str, request: Request, session: SessionDep, caller: AdminDep
) -> Source:
    """Deliveries to a deactivated source are refused (410)."""
    return Source.model_validate(_view(request, sources.deactivate(session, caller, source_id)))


@router.get("/v1/sources/{source_id}/deliveries")
def list_deliveries(
    source_id: str, session: SessionDep, _: AdminDep, cursor: Cursor = None, limit: Limit = 50
) -> Page[Delivery]:
    """The source's verified deliveries, oldest first, with the answer each got."""
    if session.get(InboundSource, source_id) is None:
        raise not_found("Source", source_id)
    query = select(SourceDelivery).where(SourceDelivery.source_id == source_id)
    rows, next_cursor = keyset_page(
        session, query, SourceDelivery.received_at, SourceDelivery.id, cursor, limit
    )
    return Page[Delivery](items=[delivery_view(d) for d in rows], next_cursor=next_cursor)


def _view(request: Request, source: InboundSource) -> dict[str, Any]:
    return sources.source_view(source, link(request, "source_hook", source_id=source.id))
