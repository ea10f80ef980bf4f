"""SLA judgements: each ended SLA period recorded met or not_met, with its service credit.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service_credit_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("report_grace_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    # A milestone made before this revision is dated by its engagement.
    op.execute(
        "UPDATE milestones SET created_at = (SELECT engagements.created_at FROM engagements "
        "WHERE engagements.id = milestones.engagement_id)"
    )
    op.create_table(
        "sla_judgements",
        sa.Column("milestone_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=120), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("line_id", sa.String(length=40), nullable=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("judged_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_sla_judgements_engagement_id_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_sla_judgements_milestone_id_milestones"),
        ),
        sa.PrimaryKeyConstraint("milestone_id", "period", name=op.f("pk_sla_judgements")),
    )
    op.create_index(
        op.f("ix_sla_judgements_engagement_id"), "sla_judgements", ["engagement_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sla_judgements_engagement_id"), table_name="sla_judgements")
    op.drop_table("sla_judgements")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_column("created_at")
        batch_op.drop_column("report_grace_days")
        batch_op.drop_column("service_credit_minor")
