"""Delivery: the outbox gains channel, address, rendered content and retry state; attempts and
webhook endpoints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def outbox_columns() -> list[sa.Column]:
    """New each call: a Column belongs to one table, and tests migrate many databases."""
    return [
        sa.Column("channel", sa.String(length=16), nullable=False, server_default="email"),
        sa.Column("address", sa.String(length=2048), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False, server_default=""),
        sa.Column("body_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("body_html", sa.Text(), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        for column in outbox_columns():
            batch_op.add_column(column)
    # Rows written before delivery existed have no content to send: they get a message id of
    # their own and end dead, so admins see them (GET /v1/notifications?status=dead).
    op.execute(
        "UPDATE notification_outbox SET message_id = 'msg_outbox_' || CAST(id AS VARCHAR), "
        "status = 'dead', last_error = 'recorded before delivery existed: nothing to send'"
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_notification_outbox_message_id"), ["message_id"]
        )
        batch_op.create_index(batch_op.f("ix_notification_outbox_status"), ["status"])

    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification_outbox.id"],
            name=op.f("fk_notification_attempts_notification_id_notification_outbox"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    with op.batch_alter_table("notification_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_attempts_notification_id"), ["notification_id"]
        )

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("engagement_id", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_webhook_endpoints_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagements.id"],
            name=op.f("fk_webhook_endpoints_engagement_id_engagements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_customer_id"), ["customer_id"])
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_engagement_id"), ["engagement_id"])


def downgrade() -> None:
    op.drop_table("webhook_endpoints")
    op.drop_table("notification_attempts")
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_outbox_status"))
        batch_op.drop_constraint(batch_op.f("uq_notification_outbox_message_id"), type_="unique")
        for column in reversed(outbox_columns()):
            batch_op.drop_column(column.name)
