"""Regulatory confirmations: confirmation ids on runs, unique per engagement; per-filing milestones.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("repeatable", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("confirmation", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmation_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("confirmation_held", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "uq_runs_engagement_id_confirmation_held",
            ["engagement_id", "confirmation_held"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("uq_runs_engagement_id_confirmation_held")
        batch_op.drop_column("confirmation_held")
        batch_op.drop_column("confirmation_id")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_column("confirmation")
        batch_op.drop_column("repeatable")
