"""Inbound sources: signed-webhook sources, their secrets and their delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_inbound_sources_engagement_id_engagements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sources")),
    )
    with op.batch_alter_table("inbound_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_sources_engagement_id"), ["engagement_id"])

    op.create_table(
        "source_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=120), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["inbound_sources.id"],
            name=op.f("fk_source_deliveries_source_id_inbound_sources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_deliveries")),
        sa.UniqueConstraint(
            "source_id", "webhook_id", name=op.f("uq_source_deliveries_source_id_webhook_id")
        ),
    )
    with op.batch_alter_table("source_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_deliveries_source_id"), ["source_id"])


def downgrade() -> None:
    op.drop_table("source_deliveries")
    op.drop_table("inbound_sources")
