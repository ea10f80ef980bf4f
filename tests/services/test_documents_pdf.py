"""An invoice's document (services/pdf/), on SQLite and PostgreSQL, with the line kinds the
milestone example never bills: lines grouped by engagement (time and materials found through
its period's run id, an unattributed line last), labelled by kind, amounts formatted for a
currency without minor digits, a draft anchored to the chain's head, the same bytes twice."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from db.audit import append_event
from db.models import Customer, Engagement, Invoice, InvoiceLine, Milestone, new_id
from services.pdf.invoices import invoice_document
from services.pdf.model import DocumentContext
from services.pdf.render import render_pdf
from tests.conftest import database_sessions

AT = datetime(2026, 10, 31, 12, tzinfo=UTC)
CONTEXT = DocumentContext.of(
    Settings(
        issuer_name="Northwind Beratung GmbH",
        issuer_address="Hauptstraße 1\n10115 Berlin",
        issuer_tax_id="DE123456789",
        public_url="https://billing.example",
    )
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with database_sessions(request.param, tmp_path_factory.mktemp(request.param)) as sessions:
        yield sessions


def hybrid_draft(session: Session) -> tuple[str, str]:
    """A JPY draft: a bonus milestone, a T&M line and a credit on one engagement, and an
    encounter line whose encounter is unknown. Returns (invoice id, engagement id)."""
    customer = Customer(id=new_id("cus"), name="Клиент Петров", currency="JPY")
    engagement = Engagement(
        id=new_id("eng"),
        customer_id=customer.id,
        name="Hybrid rollout",
        currency="JPY",
        approval={"roles": {}, "calendar": {"timezone": "Asia/Tokyo"}},
    )
    milestone = Milestone(
        id=new_id("ms"),
        engagement_id=engagement.id,
        key="launch-bonus",
        name="Launch bonus",
        position=1,
        fee_minor=500_000,
        kind="bonus",
        trigger_mode="manual",
    )
    invoice = Invoice(id=new_id("inv"), customer_id=customer.id, currency="JPY", draft_key="k")
    session.add_all([customer, engagement, milestone, invoice])
    session.flush()
    lines = [
        ("milestone", "Launch bonus (launch-bonus, 100% complete)", 500_000, milestone.id, None),
        (
            "time_and_materials",
            "Time and materials, senior, 2026-10: 12.5 h x 20,000",
            250_000,
            None,
            f"time-period:{engagement.id}:2026-10:senior",
        ),
        ("credit", "Goodwill credit", -50_000, milestone.id, None),
        ("encounter", "99213 on 2026-10-02", 12_345, None, "enc_unknown"),
    ]
    for minute, (kind, description, amount, milestone_id, run_id) in enumerate(lines):
        session.add(
            InvoiceLine(
                id=new_id("lin"),
                invoice_id=invoice.id,
                kind=kind,
                description=description,
                amount_minor=amount,
                milestone_id=milestone_id,
                run_id=run_id,
                evidence=[],
                details={"hours": "12.5", "entry_count": 3}
                if kind == "time_and_materials"
                else {"encounter_id": "V-1", "units": 1}
                if kind == "encounter"
                else None,
                created_at=AT + timedelta(minutes=minute),  # the order they were posted
            )
        )
    invoice.total_minor = sum(amount for _, _, amount, _, _ in lines)
    append_event(session, engagement_id=engagement.id, actor="admin", kind="engagement_created")
    return invoice.id, engagement.id


def test_a_hybrid_draft_groups_its_lines_by_engagement_and_renders_the_same_bytes_twice(
    sessions: sessionmaker[Session],
):
    with sessions.begin() as session:
        invoice_id, engagement_id = hybrid_draft(session)
    with sessions() as session:
        document = invoice_document(session, invoice_id, CONTEXT)
        head = session.get_one(Engagement, engagement_id)

    assert [(g.title, [line.label for line in g.lines]) for g in document.groups] == [
        (f"Hybrid rollout ({engagement_id})", ["Bonus", "Time and materials", "Credit"]),
        ("Other charges", ["Encounter"]),
    ]
    assert [g.subtotal_minor for g in document.groups] == [700_000, 12_345]
    assert document.groups[0].lines[1].detail == "12.5 h from 3 time entries"
    assert document.draft and document.watermark == "DRAFT" and not document.anchors_at_issue
    [anchor] = document.anchors
    assert (anchor.engagement_id, anchor.seq, anchor.kind) == (head.id, 1, "engagement_created")
    assert anchor.verify_url == f"https://billing.example/v1/engagements/{head.id}/audit/verify"

    content = render_pdf(document)
    with sessions() as session:
        assert render_pdf(invoice_document(session, invoice_id, CONTEXT)) == content
    text = PdfReader(io.BytesIO(content)).pages[0].extract_text()
    for expected in (
        "Northwind Beratung GmbH",
        "Hauptstraße 1",
        "Tax id: DE123456789",
        "Клиент Петров",
        "DRAFT",
        "Bonus",
        "500,000 JPY",  # yen have no minor digits
        "-50,000 JPY",
        "Subtotal 700,000 JPY",
        "Other charges",
        "Encounter V-1, 1 unit(s)",
        "Total due 712,345 JPY",
        anchor.hash,
    ):
        assert expected in text, expected
