"""Request dependencies: the database session, the Temporal client and the caller."""

import hashlib
import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.problems import Problem
from config import Settings
from db.models import IntegrationToken, Principal
from db.session import read_only_sessions
from services.callers import Caller

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A writer's session, or a read-only one for requests that change nothing (GET, HEAD):
    on SQLite only writers take the write lock, so reads never queue behind it."""
    sessions = request.app.state.session_factory
    if request.method in READ_METHODS:
        sessions = read_only_sessions(sessions)
    with sessions() as session:
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


# Declares the scheme in the OpenAPI document; a missing or malformed header is our own 401.
BEARER = HTTPBearer(
    auto_error=False,
    description="The admin token, a principal's token or an engagement's integration token.",
)


def get_caller(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Caller:
    """Resolve the bearer token in a short read-only session of its own, so looking a token up
    never holds a lock for the rest of the request."""
    if credentials is None:
        raise Problem(
            401, "unauthenticated", "Unauthenticated", "Send 'Authorization: Bearer <token>'."
        )
    token = credentials.credentials
    if settings.admin_token and hmac.compare_digest(token, settings.admin_token):
        return Caller("admin", "admin")
    digest = hash_token(token)
    with read_only_sessions(request.app.state.session_factory)() as session:
        principal_id = session.scalar(select(Principal.id).where(Principal.token_hash == digest))
        if principal_id is not None:
            return Caller("principal", principal_id)
        integration = session.execute(
            select(IntegrationToken.id, IntegrationToken.engagement_id).where(
                IntegrationToken.token_hash == digest
            )
        ).first()
    if integration is not None:
        return Caller("integration", *integration)
    raise Problem(401, "unauthenticated", "Unauthenticated", "The token is not recognised.")


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(caller: CallerDep) -> Caller:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "This needs the admin token.")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]
