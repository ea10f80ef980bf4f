"""The approver page: ``/approve/{token}`` from a signed link, no account or bearer token.

GET shows the run; POST sends the decision as the same Update the API sends (the workflow judges
it) and redirects back to GET (303), which then shows the recorded decision. Every refusal is an
HTML page with the reason, never problem+json and never a stack trace: these are people.

CSRF: the link token in the URL is the only credential (no cookie, no ambient authority a
third-party site could ride), so a forged post would need the link itself. Each rendered form
still carries a token signed with the link secret, bound to this link and timestamped
(``services.approval_links.form_token``), so a post is accepted only from a page this server
rendered for this link within the last hours. Pages send ``Referrer-Policy: no-referrer`` (the
link must not leak to evidence hosts), ``frame-ancestors 'none'`` (no click-jacking of the
Approve button) and ``Cache-Control: no-store``.
"""

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.pages.approval_view import build_page, run_evidence_ids
from api.routes.evidence import content_disposition
from api.views import run_row_view, run_status_view
from config import Settings
from db.models import Evidence, EvidenceBlob, Run, new_id
from domain.lifecycle import TERMINAL_STAGES
from services import approval_links as links
from services.callers import Caller
from services.errors import Problem
from services.evidence import link_evidence
from services.runs import RunClosed, read_status, send_decision
from workflows.contracts import DecisionSignal

log = logging.getLogger("tollgate.pages")
router = APIRouter(prefix="/approve", include_in_schema=False)
STATIC = StaticFiles(packages=[("api", "static")])
TEMPLATES = Jinja2Templates(
    env=Environment(loader=PackageLoader("templates", "approve"), autoescape=select_autoescape())
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
}
# How long the page waits for the run's status query before showing the recorded books instead.
QUERY_PATIENCE_SECONDS = 3
MAX_COMMENT = 4000


class Refused(Exception):
    """A page that says no: status, a short title and a sentence for a person."""

    def __init__(self, status: int, title: str, message: str, about_link: bool = False) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
        # A refusal of the link itself: there is no page to go back to.
        self.about_link = about_link


@router.get("/{token}", name="approval_page")
async def approval_page(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    try:
        return await _render(request, session, settings, temporal, token)
    except Refused as refused:
        return _refusal(request, refused)


@router.post("/{token}")
async def decide(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    try:
        grant = _grant(settings, token)
        form = await request.form(max_files=1)
        if not links.form_token_valid(settings.link_secret, token, str(form.get("csrf", ""))):
            raise Refused(
                403,
                "Form expired",
                "This form was not rendered for this link, or it is too old. "
                "Open the link again and decide from the fresh page.",
            )
        decision, comment = str(form.get("decision", "")), str(form.get("comment", ""))
        errors = _form_errors(decision, comment)
        if errors:
            return await _render(request, session, settings, temporal, token, errors, comment)
        upload = form.get("evidence")
        run = await run_in_threadpool(_run, session, grant.run_id)
        evidence_ids = []
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read(settings.evidence_max_bytes + 1)
            if len(content) > settings.evidence_max_bytes:
                errors = {"evidence": f"The file exceeds {settings.evidence_max_bytes} bytes."}
                return await _render(request, session, settings, temporal, token, errors, comment)
            evidence_ids = [await run_in_threadpool(_store, session, grant, upload, content)]
        signal = DecisionSignal(grant.role, grant.principal_id, decision, comment, evidence_ids)
        try:
            await send_decision(temporal, run.id, signal, settings.update_patience_seconds)
        except RunClosed:
            raise await run_in_threadpool(_closed, session, run.id) from None
        except Problem as problem:
            raise Refused(problem.status, problem.title, problem.detail) from None
        except RuntimeError as exc:
            raise _unreachable() from exc
        if evidence_ids:
            await run_in_threadpool(_link, session, grant, run.engagement_id, evidence_ids)
        return RedirectResponse(
            request.url_for("approval_page", token=token).path, 303, headers=HEADERS
        )
    except Refused as refused:
        return _refusal(request, refused, token)


@router.get("/{token}/evidence/{evidence_id}")
async def evidence_download(
    token: str,
    evidence_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """A file attached to this run's trigger or decisions, and nothing else."""
    try:
        grant = _grant(settings, token)
        run = await run_in_threadpool(_run, session, grant.run_id)
        status, _ = await _status(session, temporal, run)
        allowed = await run_in_threadpool(run_evidence_ids, session, run, status)
        evidence = session.get(Evidence, evidence_id) if evidence_id in allowed else None
        if evidence is None:
            raise Refused(404, "No such file", "This run has no such file.")
        blob = session.get_one(EvidenceBlob, evidence.sha256)
        headers = {
            **HEADERS,
            "Content-Disposition": content_disposition(evidence.filename),
            "X-Content-SHA256": evidence.sha256,
        }
        return Response(blob.content, media_type=evidence.content_type, headers=headers)
    except Refused as refused:
        return _refusal(request, refused, token)


async def _render(
    request: Request,
    session: Session,
    settings: Settings,
    temporal: Any,
    token: str,
    errors: dict[str, str] | None = None,
    comment: str = "",
) -> Response:
    """The page; with ``errors`` (a form refused before anything was sent) it answers 422 and
    keeps what the approver typed."""
    grant = _grant(settings, token)
    run = await run_in_threadpool(_run, session, grant.run_id)
    status, live = await _status(session, temporal, run)
    page = await run_in_threadpool(build_page, session, grant, run, status, live)
    page.errors = errors or {}
    context = {
        "page": page,
        "token": token,
        "csrf": links.form_token(settings.link_secret, token),
        "comment": comment,
    }
    return TEMPLATES.TemplateResponse(
        request, "page.html", context, status_code=422 if errors else 200, headers=HEADERS
    )


def _grant(settings: Settings, token: str) -> links.Grant:
    try:
        return links.read(settings.link_secret, token, datetime.now(UTC))
    except links.NoLinkSecret:
        raise Refused(
            503,
            "Approval links are switched off",
            "This server has no link secret configured (TOLLGATE_LINK_SECRET), so it cannot "
            "check approval links. Please tell the people who sent you the link.",
            about_link=True,
        ) from None
    except links.LinkExpired as expired:
        when = expired.grant.expires_at.strftime("%A %-d %B %Y at %H:%M UTC")
        raise Refused(
            410,
            "This link has expired",
            f"This approval link expired on {when}, when the run's approval window closed. "
            "No decision can be taken with it any more.",
            about_link=True,
        ) from None
    except links.LinkInvalid:
        raise Refused(
            400,
            "This link is not valid",
            "This approval link is not one we issued, or it was cut short when it was copied. "
            "Open it again from the original message.",
            about_link=True,
        ) from None


def _run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    session.commit()  # only read: nothing stays open while Temporal is asked
    if run is None:
        raise Refused(404, "Run not found", "The run this link points to no longer exists.")
    return run


async def _status(session: Session, temporal: Any, run: Run) -> tuple[dict[str, Any], bool]:
    """The workflow's own status, or the database's record when it cannot answer (not live)."""
    try:
        async with asyncio.timeout(QUERY_PATIENCE_SECONDS):
            return run_status_view(await read_status(temporal, run.id, run.stage)), True
    except (RPCError, RuntimeError, WorkflowQueryFailedError, TimeoutError):
        log.warning("run %s did not answer its status query; showing the books", run.id)
        return await run_in_threadpool(_recorded_status, session, run), False


def _recorded_status(session: Session, run: Run) -> dict[str, Any]:
    session.refresh(run)
    return run_row_view(session, run)


def _form_errors(decision: str, comment: str) -> dict[str, str]:
    if decision not in ("approve", "reject"):
        return {"decision": "Choose Approve or Reject."}
    if decision == "reject" and not comment.strip():
        return {"comment": "A rejection needs a comment: say what is missing or wrong."}
    if len(comment) > MAX_COMMENT:
        return {"comment": f"The comment is longer than {MAX_COMMENT} characters."}
    return {}


def _store(session: Session, grant: links.Grant, upload: UploadFile, content: bytes) -> str:
    """Store the approver's upload as theirs (as ``POST /v1/evidence`` would), not yet attached
    to the engagement: it is attached only once the run has taken the decision citing it."""
    sha256 = hashlib.sha256(content).hexdigest()
    if session.get(EvidenceBlob, sha256) is None:
        session.add(EvidenceBlob(sha256=sha256, size=len(content), content=content))
        session.flush()
    evidence = Evidence(
        id=new_id("evd"),
        sha256=sha256,
        size=len(content),
        filename=(upload.filename or "evidence").replace("\x00", "")[:255],
        content_type=(upload.content_type or "application/octet-stream")[:255],
        description=f"Uploaded with the {grant.role} decision",
        uploaded_by=grant.principal_id,
    )
    session.add(evidence)
    session.commit()
    return evidence.id


def _link(session: Session, grant: links.Grant, engagement_id: str, ids: list[str]) -> None:
    link_evidence(session, ids, engagement_id, Caller("principal", grant.principal_id))
    session.commit()


def _closed(session: Session, run_id: str) -> Refused:
    run = session.get_one(Run, run_id)
    session.refresh(run)
    session.commit()
    if run.stage in TERMINAL_STAGES:
        return Refused(409, "This run is closed", f"The run is closed ({run.stage}).")
    return _unreachable()


def _unreachable() -> Refused:
    return Refused(
        503,
        "The run cannot be reached",
        "The run did not answer in time; your decision may still be taken when it is back. "
        "Open the link again in a minute to see whether it was recorded.",
    )


def _refusal(request: Request, refused: Refused, token: str | None = None) -> Response:
    show_page = token is not None and not refused.about_link
    back = request.url_for("approval_page", token=token).path if show_page else None
    context = {"title": refused.title, "message": refused.message, "back": back}
    return TEMPLATES.TemplateResponse(
        request, "refused.html", context, status_code=refused.status, headers=HEADERS
    )
