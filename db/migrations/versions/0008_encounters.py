"""Per-encounter billing: payers, effective-dated fee schedules and encounters.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_terms", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payers")),
    )
    op.create_table(
        "fee_schedules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("payer_id", sa.String(length=40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_fee_schedules_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_schedules")),
        sa.UniqueConstraint(
            "payer_id", "effective_from", name=op.f("uq_fee_schedules_payer_id_effective_from")
        ),
    )
    op.create_index(op.f("ix_fee_schedules_payer_id"), "fee_schedules", ["payer_id"])
    op.create_table(
        "encounter_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("payer_id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=120), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_encounter_batches_engagement_id_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_encounter_batches_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounter_batches")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_encounter_batches_workflow_id")),
    )
    op.create_index(
        op.f("ix_encounter_batches_engagement_id"), "encounter_batches", ["engagement_id"]
    )
    op.create_table(
        "encounters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=5), nullable=False),
        sa.Column("modifiers", sa.JSON(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("patient_ref", sa.String(length=128), nullable=True),
        sa.Column("payer_id", sa.String(length=40), nullable=False),
        sa.Column("fee_schedule_id", sa.String(length=40), nullable=False),
        sa.Column("unit_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("applied_modifiers", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("line_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("billed_at", NOW, nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_encounters_engagement_id_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["encounter_batches.id"],
            name=op.f("fk_encounters_batch_id_encounter_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_encounters_payer_id_payers")
        ),
        sa.ForeignKeyConstraint(
            ["fee_schedule_id"],
            ["fee_schedules.id"],
            name=op.f("fk_encounters_fee_schedule_id_fee_schedules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
        sa.UniqueConstraint(
            "engagement_id", "encounter_id", name=op.f("uq_encounters_engagement_id_encounter_id")
        ),
    )
    op.create_index(op.f("ix_encounters_engagement_id"), "encounters", ["engagement_id"])
    op.create_index(op.f("ix_encounters_batch_id"), "encounters", ["batch_id"])
    op.create_index(op.f("ix_encounters_status"), "encounters", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_encounters_status"), table_name="encounters")
    op.drop_index(op.f("ix_encounters_batch_id"), table_name="encounters")
    op.drop_index(op.f("ix_encounters_engagement_id"), table_name="encounters")
    op.drop_table("encounters")
    op.drop_index(op.f("ix_encounter_batches_engagement_id"), table_name="encounter_batches")
    op.drop_table("encounter_batches")
    op.drop_index(op.f("ix_fee_schedules_payer_id"), table_name="fee_schedules")
    op.drop_table("fee_schedules")
    op.drop_table("payers")
