"""Signed trigger URLs: scoped to one milestone, expiring, revocable, counted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trigger_urls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("milestone_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_trigger_urls_engagement_id_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_trigger_urls_milestone_id_milestones"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_urls")),
    )
    with op.batch_alter_table("trigger_urls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trigger_urls_engagement_id"), ["engagement_id"])
        batch_op.create_index(batch_op.f("ix_trigger_urls_milestone_id"), ["milestone_id"])


def downgrade() -> None:
    with op.batch_alter_table("trigger_urls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trigger_urls_milestone_id"))
        batch_op.drop_index(batch_op.f("ix_trigger_urls_engagement_id"))
    op.drop_table("trigger_urls")
