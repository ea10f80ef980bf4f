"""Issued documents: the PDF of each finalized invoice and issued credit note, rendered once when
it is issued and kept byte for byte, and its sha256 on the invoice or credit note.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issued_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_issued_documents")),
        sa.UniqueConstraint("document_id", name=op.f("uq_issued_documents_document_id")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.drop_column("document_sha256")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("document_sha256")
    op.drop_table("issued_documents")
