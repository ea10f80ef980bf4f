"""Recording a document as issued: its PDF rendered once, kept, and its sha256 audited.

The view model is read in one transaction and the PDF rendered outside any (rendering takes
CPU, not the database, and holds no lock); a second transaction records it. A retry, or a
second caller, finds the document recorded and gets the first recording back.
"""

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval import at_
from config import Settings
from db.models import IssuedDocument
from services.issued_documents import (
    DocumentKind,
    Issued,
    NotIssued,
    issued_view,
    record_issued,
    recorded_document,
)
from services.pdf.model import DocumentContext
from services.pdf.render import render_pdf
from workflows.issued_documents import RecordDocument, RecordedDocument


class IssuedDocumentActivities:
    def __init__(
        self, session_factory: sessionmaker[Session], context: DocumentContext | None = None
    ) -> None:
        self._sessions = session_factory
        self._context = context or DocumentContext.of(Settings())

    @activity.defn(name="record_document")
    def record_document(self, req: RecordDocument) -> RecordedDocument:
        kind = DocumentKind(req.kind)
        try:
            with self._sessions.begin() as session:
                done = recorded_document(session, kind, req.document_id)
                if done is not None:
                    return _recorded(done)
                document = issued_view(session, kind, req.document_id, self._context)
            issued = Issued(document, render_pdf(document))
            with self._sessions.begin() as session:
                return _recorded(
                    record_issued(session, kind, issued, actor=req.actor, at=at_(req.at))
                )
        except NotIssued as exc:
            raise ApplicationError(str(exc), type="DocumentNotIssued", non_retryable=True) from exc


def _recorded(document: IssuedDocument) -> RecordedDocument:
    return RecordedDocument(document.document_id, document.number, document.sha256, document.size)
