"""Recording a document as issued (services/issued_documents.py), on SQLite and PostgreSQL: a draft
has nothing to record, a finalized invoice is recorded once — its bytes, its sha256 on the row and
one ``document_issued`` event per engagement it bills (an unattributed line adds none) — and a
lookup by hash takes any case but only 64 hexadecimal digits."""

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditEvent, Invoice, IssuedDocument
from services.errors import Problem
from services.issued_documents import (
    DocumentKind,
    Issued,
    NotIssued,
    document_by_hash,
    issued_view,
    record_issued,
)
from services.pdf.render import render_pdf
from tests.conftest import database_sessions
from tests.services.test_documents_pdf import AT, CONTEXT, hybrid_draft

INVOICE = DocumentKind.INVOICE


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with database_sessions(request.param, tmp_path_factory.mktemp(request.param)) as sessions:
        yield sessions


def rendered(sessions: sessionmaker[Session], invoice_id: str) -> Issued:
    with sessions() as session:
        document = issued_view(session, INVOICE, invoice_id, CONTEXT)
    return Issued(document, render_pdf(document))


def test_a_finalized_invoice_is_recorded_once_with_one_event_per_engagement_it_bills(
    sessions: sessionmaker[Session],
):
    with sessions.begin() as session:
        invoice_id, engagement_id = hybrid_draft(session)
    with sessions() as session, pytest.raises(NotIssued):
        issued_view(session, INVOICE, invoice_id, CONTEXT)  # a draft is not issued
    with sessions.begin() as session:
        invoice = session.get_one(Invoice, invoice_id)
        invoice.status, invoice.number, invoice.draft_key = "finalized", "NW-2026-000007", None
        invoice.issued_on = AT.date()

    first = rendered(sessions, invoice_id)
    with sessions.begin() as session:
        record_issued(session, INVOICE, first, actor="admin", at=AT)
    # A second rendering (a retry, a race) changes nothing: the first recording stands.
    second = Issued(first.document, first.content + b"\n% another rendering")
    with sessions.begin() as session:
        kept = record_issued(session, INVOICE, second, actor="admin", at=AT)
        assert (kept.sha256, kept.content) == (first.sha256, first.content)

    with sessions() as session:
        assert session.get_one(Invoice, invoice_id).document_sha256 == first.sha256
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.kind == "document_issued"))
        assert event.engagement_id == engagement_id
        assert event.data == {
            "document": "invoice",
            "document_id": invoice_id,
            "number": "NW-2026-000007",
            "filename": "invoice-NW-2026-000007.pdf",
            "sha256": hashlib.sha256(first.content).hexdigest(),
            "size": len(first.content),
        }
        found = document_by_hash(session, f"  {first.sha256.upper()} ")
        assert (found.document_id, found.kind) == (invoice_id, "invoice")
        assert session.scalar(select(IssuedDocument.size)) == len(first.content)


@pytest.mark.parametrize(
    ("text", "status"),
    [("abc", 422), ("g" * 64, 422), ("0" * 63, 422), ("0" * 64, 404)],
)
def test_a_lookup_refuses_what_is_not_a_sha256_and_finds_no_unissued_one(
    sessions: sessionmaker[Session], text: str, status: int
):
    with sessions() as session, pytest.raises(Problem) as refused:
        document_by_hash(session, text)
    assert refused.value.status == status
