import hashlib
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import CallerDep, SessionDep, SettingsDep
from api.models import Evidence as EvidenceOut
from api.problems import Problem, not_found
from api.views import evidence_view
from db.models import Engagement, Evidence, EvidenceBlob, EvidenceLink, new_id
from services import evidence as evidence_service
from services.access import can_see
from services.callers import Caller

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])
CHUNK = 1024 * 1024


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_evidence(
    file: UploadFile,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    description: Annotated[str | None, Form(max_length=2000, pattern=r"^[^\x00]*$")] = None,
) -> EvidenceOut:
    """Store a file content-addressed (sha256); refuse it whole when over the size limit."""
    limit = settings.evidence_max_bytes
    digest, chunks, size = hashlib.sha256(), [], 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise Problem(
                413,
                "evidence-too-large",
                "Evidence too large",
                f"The file exceeds the {limit}-byte evidence limit; nothing was stored.",
            )
        digest.update(chunk)
        chunks.append(chunk)
    sha256 = digest.hexdigest()
    if session.get(EvidenceBlob, sha256) is None:
        session.add(EvidenceBlob(sha256=sha256, size=size, content=b"".join(chunks)))
        session.flush()  # no ORM relationship orders the two inserts, so the blob goes first
    evidence = Evidence(
        id=new_id("evd"),
        sha256=sha256,
        size=size,
        filename=(file.filename or "evidence").replace("\x00", "")[:255],
        content_type=(file.content_type or "application/octet-stream").replace("\x00", "")[:255],
        description=description,
        uploaded_by=caller.actor,
    )
    session.add(evidence)
    session.commit()
    return EvidenceOut.model_validate(evidence_view(evidence))


@router.get(
    "/{evidence_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The file as uploaded, sent with the Content-Type it was uploaded with.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def download_evidence(evidence_id: str, session: SessionDep, caller: CallerDep) -> Response:
    evidence = session.get(Evidence, evidence_id)
    if evidence is None:
        raise not_found("Evidence", evidence_id)
    if caller.kind != "admin" and evidence.uploaded_by != caller.actor:
        engagements = session.scalars(
            select(Engagement)
            .join(EvidenceLink, EvidenceLink.engagement_id == Engagement.id)
            .where(EvidenceLink.evidence_id == evidence.id)
        ).all()
        if not any(can_see(caller, e) for e in engagements):
            raise Problem(403, "forbidden", "Forbidden", "This token has no access to the file.")
    blob = session.get_one(EvidenceBlob, evidence.sha256)
    return Response(
        blob.content,
        media_type=evidence.content_type,
        headers={
            "Content-Disposition": content_disposition(evidence.filename),
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": evidence.sha256,
        },
    )


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact name as UTF-8 ``filename*``.

    Header values are latin-1, so a name such as ``报告.pdf`` cannot be sent as it is.
    """
    fallback = "".join(
        c if " " <= c <= "~" and c not in '"\\' else "_"
        for c in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(c)
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def link_evidence_or_422(
    session: Session, evidence_ids: list[str], engagement_id: str, caller: Caller
) -> None:
    """Attach cited evidence to the engagement; a 422 naming each id it may not cite."""
    try:
        evidence_service.link_evidence(session, evidence_ids, engagement_id, caller)
    except evidence_service.EvidenceNotLinkable as exc:
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            str(exc),
            [{"field": "evidence_ids", "message": m} for m in exc.errors.values()],
        ) from exc
