"""Client-caused delay on time and materials: the advisory rate and grace on T&M terms,
dependency-delay entries (who caused it, business days) and how far delays moved a deadline;
timesheet sign-off (``approval`` on T&M terms, a period's latest sign-off run).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("time_terms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("advisory_rate_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("delay_grace", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("approval", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("time_periods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sign_off_run_id", sa.String(length=120), nullable=True))
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("entry_kind", sa.String(length=24), server_default="work", nullable=False)
        )
        batch_op.add_column(sa.Column("caused_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("business_days", sa.Integer(), nullable=True))
    op.create_table(
        "milestone_delay_shifts",
        sa.Column("milestone_id", sa.String(length=40), nullable=False),
        sa.Column("base_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_shift", sa.Integer(), nullable=False),
        sa.Column("shift", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_milestone_delay_shifts_milestone_id_milestones"),
        ),
        sa.PrimaryKeyConstraint("milestone_id", name=op.f("pk_milestone_delay_shifts")),
    )


def downgrade() -> None:
    op.drop_table("milestone_delay_shifts")
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.drop_column("business_days")
        batch_op.drop_column("caused_by")
        batch_op.drop_column("entry_kind")
    with op.batch_alter_table("time_periods", schema=None) as batch_op:
        batch_op.drop_column("sign_off_run_id")
    with op.batch_alter_table("time_terms", schema=None) as batch_op:
        batch_op.drop_column("approval")
        batch_op.drop_column("delay_grace")
        batch_op.drop_column("advisory_rate_minor")
