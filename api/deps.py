"""Request dependencies: the database session, the Temporal client and the caller."""

import hashlib
import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.problems import Problem
from config import Settings
from db.models import IntegrationToken, Principal
from services.callers import Caller


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def refuse_nul_in_path(request: Request) -> None:
    """No id holds a NUL character, and PostgreSQL cannot even compare text that does."""
    if any("\x00" in str(value) for value in request.path_params.values()):
        raise Problem(404, "not-found", "Not found", "No resource has an id with a NUL character.")


SessionDep = Annotated[Session, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_caller(request: Request, session: SessionDep, settings: SettingsDep) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "unauthenticated", "Unauthenticated", "Send 'Authorization: Bearer <token>'."
        )
    token = token.strip()
    if settings.admin_token and hmac.compare_digest(token, settings.admin_token):
        return Caller("admin", "admin")
    digest = hash_token(token)
    principal_id = session.scalar(select(Principal.id).where(Principal.token_hash == digest))
    if principal_id is not None:
        return Caller("principal", principal_id)
    integration = session.scalar(
        select(IntegrationToken).where(IntegrationToken.token_hash == digest)
    )
    if integration is not None:
        return Caller("integration", integration.id, integration.engagement_id)
    raise Problem(401, "unauthenticated", "Unauthenticated", "The token is not recognised.")


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(caller: CallerDep) -> Caller:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "This needs the admin token.")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]
