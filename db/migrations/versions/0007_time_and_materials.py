"""Time and materials: rate cards, time entries (reversing corrections) and billing periods.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "time_terms",
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("rate_card", sa.JSON(), nullable=False),
        sa.Column("not_to_exceed_minor", sa.BigInteger(), nullable=True),
        sa.Column("period_cap_minor", sa.BigInteger(), nullable=True),
        sa.Column("minimum_minor", sa.BigInteger(), nullable=True),
        sa.Column("retention", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_time_terms_engagement_id_engagements"),
        ),
        sa.PrimaryKeyConstraint("engagement_id", name=op.f("pk_time_terms")),
    )
    op.create_table(
        "time_periods",
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("entered_minor", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=120), nullable=True),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_time_periods_engagement_id_engagements"),
        ),
        sa.PrimaryKeyConstraint("engagement_id", "period", name=op.f("pk_time_periods")),
    )
    op.create_table(
        "time_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reverses_id", sa.String(length=40), nullable=True),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("work_date", sa.Date(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("hours", sa.String(length=16), nullable=False),
        sa.Column("rate_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("milestone_key", sa.String(length=100), nullable=True),
        sa.Column("adjustment", sa.Boolean(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("billed_minor", sa.BigInteger(), nullable=True),
        sa.Column("capped_minor", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_time_entries_engagement_id_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["time_entries.id"],
            name=op.f("fk_time_entries_reverses_id_time_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_entries")),
        sa.UniqueConstraint(
            "engagement_id", "external_id", name=op.f("uq_time_entries_engagement_id_external_id")
        ),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_time_entries_reverses_id")),
    )
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.create_index("ix_time_entries_engagement_id_period", ["engagement_id", "period"])


def downgrade() -> None:
    op.drop_table("time_entries")
    op.drop_table("time_periods")
    op.drop_table("time_terms")
