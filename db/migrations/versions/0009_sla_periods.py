"""SLA-conditional charges: a milestone's SLA period kind; the period a run bills, once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of db.models.PERIOD_HELD as of this revision.
PERIOD_HELD = sa.text(
    "period IS NOT NULL AND stage NOT IN "
    "('cancelled', 'expired', 'failed', 'ineligible', 'rejected')"
)


def upgrade() -> None:
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_period", sa.String(length=16), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "uq_runs_milestone_id_period_open_or_billed",
            ["milestone_id", "period"],
            unique=True,
            sqlite_where=PERIOD_HELD,
            postgresql_where=PERIOD_HELD,
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("uq_runs_milestone_id_period_open_or_billed")
        batch_op.drop_column("period")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_column("sla_period")
