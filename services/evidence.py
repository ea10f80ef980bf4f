"""Citing evidence: who may attach a file to an engagement, and recording that it is attached.

Attaching evidence to an engagement lets that engagement's principals download it, so a caller
may only attach what it can already read within that engagement: evidence already attached to
the same engagement, or evidence it uploaded itself that is not attached anywhere yet. The admin
may attach anything.
"""

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Evidence, EvidenceLink
from services.callers import Caller


class EvidenceNotLinkable(Exception):
    """Some cited evidence does not exist or may not be attached by this caller."""

    def __init__(self, engagement_id: str, unknown: Sequence[str], refused: Sequence[str]) -> None:
        self.engagement_id = engagement_id
        self.unknown = tuple(unknown)
        self.refused = tuple(refused)
        self.errors = {e: f"unknown evidence {e!r}" for e in self.unknown} | {
            e: f"evidence {e!r} may not be cited on engagement {engagement_id}: cite evidence "
            "already attached to it, or evidence you uploaded that is not attached elsewhere"
            for e in self.refused
        }
        super().__init__("; ".join(self.errors.values()))


def check_citable(
    session: Session, evidence_ids: Sequence[str], engagement_id: str, caller: Caller
) -> None:
    """Raise ``EvidenceNotLinkable`` unless the caller may cite every id on the engagement.

    It only reads: a caller that must not write yet (a decision the workflow may still refuse)
    checks first, ends its transaction with a commit, and links afterwards.
    """
    wanted = list(dict.fromkeys(evidence_ids))
    if not wanted:
        return
    rows = session.execute(
        select(
            Evidence.id,
            Evidence.uploaded_by,
            exists().where(
                EvidenceLink.evidence_id == Evidence.id,
                EvidenceLink.engagement_id == engagement_id,
            ),
            exists().where(EvidenceLink.evidence_id == Evidence.id),
        ).where(Evidence.id.in_(wanted))
    ).all()
    readable = {
        evidence_id
        for evidence_id, uploaded_by, linked_here, linked_anywhere in rows
        if caller.kind == "admin"
        or linked_here
        or (uploaded_by == caller.actor and not linked_anywhere)
    }
    found = {row[0] for row in rows}
    unknown = [e for e in wanted if e not in found]
    refused = [e for e in wanted if e in found and e not in readable]
    if unknown or refused:
        raise EvidenceNotLinkable(engagement_id, unknown, refused)


def link_evidence(
    session: Session, evidence_ids: Sequence[str], engagement_id: str, caller: Caller
) -> None:
    """Attach the cited evidence to the engagement, or raise ``EvidenceNotLinkable``.

    Nothing is written when any id is refused. Attaching is an upsert, so concurrent requests
    citing the same evidence never collide on the link's primary key.
    """
    check_citable(session, evidence_ids, engagement_id, caller)
    if not evidence_ids:
        return
    wanted = dict.fromkeys(evidence_ids)
    links = [{"evidence_id": e, "engagement_id": engagement_id} for e in wanted]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(EvidenceLink).values(links).on_conflict_do_nothing())
