"""Signed trigger URLs: a door for systems that can only call a URL (no headers, no signing).

A URL triggers one milestone. Its token is the URL's id signed with ``TOLLGATE_LINK_SECRET``
(HMAC via ``itsdangerous``, with a salt of its own so no approval link can pass for one); the
token grants nothing by itself: the ``trigger_urls`` row decides on every use whether the URL is
revoked, expired or used up, so revoking takes effect at once.

A use is counted only when a trigger is newly accepted: ``claim_use`` raises the count with a
conditional UPDATE inside the transaction that ``services.triggers.accept_trigger`` then
commits, so the count and the trigger are committed together, concurrent calls can never pass
``max_uses``, and a refusal (an open run, a replayed key) rolls the count back with it.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import AwareDatetime, BeforeValidator, Field, StrictInt
from pydantic_core import PydanticCustomError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import Milestone, new_id
from db.trigger_urls import TriggerUrl
from domain.lifecycle import MilestoneStatus
from domain.times import iso
from services.access import load_engagement
from services.callers import Caller
from services.errors import Problem, invalid, not_found
from services.fields import Id, Strict
from services.runs import milestone_run_id

SALT = "tollgate-trigger-url"
MAX_LIFETIME = timedelta(days=365)
MAX_USES = 10_000
# A caller's idempotency key is stored as "<url id>:<key>", within the triggers' 255 characters.
MAX_KEY = 200


def _timestamp_text(value: Any) -> Any:
    """RFC 3339 text only: numbers are refused rather than read as epochs."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "expires_at", "expires_at is an RFC 3339 timestamp such as 2027-01-31T17:00:00Z"
        )
    return value


class TriggerUrlIn(Strict):
    milestone: Id  # the milestone's key or id
    expires_at: Annotated[AwareDatetime, BeforeValidator(_timestamp_text)]
    max_uses: Annotated[StrictInt, Field(ge=1, le=MAX_USES)] | None = None


class TokenInvalid(Exception):
    """Not a trigger-URL token Tollgate signed (tampered, truncated, another secret or salt)."""


def sign(secret: str, trigger_url_id: str) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps(trigger_url_id)


def read(secret: str, token: str) -> str:
    """The trigger URL id a token names; TokenInvalid if this server did not sign it."""
    try:
        trigger_url_id = URLSafeSerializer(secret, salt=SALT).loads(token)
    except BadSignature as exc:
        raise TokenInvalid("not a trigger URL token") from exc
    if not isinstance(trigger_url_id, str) or not trigger_url_id.startswith("tu_"):
        raise TokenInvalid("not a trigger URL token")
    return trigger_url_id


def unknown_url() -> Problem:
    """One answer for every token that names nothing: which part was wrong is not said."""
    return Problem(404, "not-found", "Not found", "No trigger URL answers at this address.")


def status(url: TriggerUrl, now: datetime) -> str:
    if url.revoked_at is not None:
        return "revoked"
    if url.expires_at <= now:
        return "expired"
    if url.max_uses is not None and url.uses >= url.max_uses:
        return "used-up"
    return "active"


def create(
    session: Session, caller: Caller, engagement_id: str, body: TriggerUrlIn, now: datetime
) -> TriggerUrl:
    engagement = load_engagement(session, engagement_id, caller)
    target = _milestone(session, engagement.id, body.milestone)
    if engagement.status != "active":
        raise Problem(
            409,
            "engagement-closed",
            "Engagement closed",
            f"Engagement {engagement.id} is {engagement.status}; it takes no triggers.",
        )
    if target.status == MilestoneStatus.REMOVED:
        raise Problem(
            409,
            "milestone-removed",
            "Milestone removed",
            f"Milestone {target.key} was removed by a change order; it takes no triggers.",
        )
    if body.expires_at <= now:
        raise invalid("expires_at", "expires_at must be in the future")
    if body.expires_at > now + MAX_LIFETIME:
        raise invalid("expires_at", f"a trigger URL lives at most {MAX_LIFETIME.days} days")
    url = TriggerUrl(
        id=new_id("tu"),
        engagement_id=engagement.id,
        milestone_id=target.id,
        created_at=now,
        created_by=caller.actor,
        expires_at=body.expires_at,
        max_uses=body.max_uses,
        uses=0,
    )
    session.add(url)
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="trigger_url_created",
        milestone_id=target.id,
        data={
            "trigger_url_id": url.id,
            "expires_at": iso(body.expires_at),
            "max_uses": body.max_uses,
        },
    )
    session.commit()
    return url


def _milestone(session: Session, engagement_id: str, key_or_id: str) -> Milestone:
    for column in (Milestone.id, Milestone.key):
        found = session.scalar(
            select(Milestone).where(Milestone.engagement_id == engagement_id, column == key_or_id)
        )
        if found is not None:
            return found
    raise invalid("milestone", f"engagement {engagement_id} has no milestone {key_or_id}")


def revoke(session: Session, caller: Caller, trigger_url_id: str, now: datetime) -> None:
    """Revoke at once; revoking a revoked URL changes nothing (and is not audited twice)."""
    url = session.get(TriggerUrl, trigger_url_id)
    if url is None:
        raise not_found("Trigger URL", trigger_url_id)
    load_engagement(session, url.engagement_id, caller)
    revoked = session.execute(
        update(TriggerUrl)
        .where(TriggerUrl.id == url.id, TriggerUrl.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    if revoked:
        append_event(
            session,
            engagement_id=url.engagement_id,
            actor=caller.actor,
            kind="trigger_url_revoked",
            milestone_id=url.milestone_id,
            data={"trigger_url_id": url.id},
        )
    session.commit()


@dataclass(frozen=True)
class Use:
    """A claimed use: who triggers (the URL, as an integration caller), what, under which key."""

    caller: Caller
    milestone_id: str
    key: str


def claim_use(
    session: Session, trigger_url_id: str, address: str, key: str | None, now: datetime
) -> Use:
    """Count one use and audit it, uncommitted: the trigger's acceptance commits both, and any
    refusal of the trigger must roll them back. A dead URL is refused (410) and the refusal
    audited and committed here."""
    url = session.get(TriggerUrl, trigger_url_id)
    if url is None:
        raise unknown_url()
    counted = session.execute(
        update(TriggerUrl)
        .where(
            TriggerUrl.id == url.id,
            TriggerUrl.revoked_at.is_(None),
            TriggerUrl.expires_at > now,
            or_(TriggerUrl.max_uses.is_(None), TriggerUrl.uses < TriggerUrl.max_uses),
        )
        .values(uses=TriggerUrl.uses + 1)
        .returning(TriggerUrl.uses)
    ).scalar()
    if counted is None:
        session.rollback()
        raise _refuse(session, url.id, address, now)
    milestone = session.get_one(Milestone, url.milestone_id)
    stored_key = f"{url.id}:{key if key is not None else uuid.uuid4().hex}"
    append_event(
        session,
        engagement_id=url.engagement_id,
        actor=_caller(url).actor,
        kind="trigger_url_used",
        milestone_id=milestone.id,
        run_id=milestone_run_id(milestone, stored_key),
        data={
            "trigger_url_id": url.id,
            "address": address,
            "use": counted,
            "max_uses": url.max_uses,
        },
    )
    return Use(_caller(url), milestone.id, stored_key)


def _caller(url: TriggerUrl) -> Caller:
    return Caller("integration", url.id, url.engagement_id)


def _refuse(session: Session, trigger_url_id: str, address: str, now: datetime) -> Problem:
    url = session.get_one(TriggerUrl, trigger_url_id, populate_existing=True)
    reason = status(url, now)
    if reason == "active":  # not met by the UPDATE with the same ``now``; refuse all the same
        reason = "used-up"
    append_event(
        session,
        engagement_id=url.engagement_id,
        actor=_caller(url).actor,
        kind="trigger_url_refused",
        milestone_id=url.milestone_id,
        data={"trigger_url_id": url.id, "address": address, "reason": reason},
    )
    session.commit()
    title, detail = {
        "revoked": (
            "Trigger URL revoked",
            f"This trigger URL was revoked at {iso(url.revoked_at)}",
        ),
        "expired": ("Trigger URL expired", f"This trigger URL expired at {iso(url.expires_at)}"),
        "used-up": ("Trigger URL used up", f"This trigger URL has been used {url.uses} times"),
    }[reason]
    return Problem(410, f"trigger-url-{reason}", title, f"{detail}; ask for a new one.")
