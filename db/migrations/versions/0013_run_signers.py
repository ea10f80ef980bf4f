"""Run signers: each principal a run's frozen policy names, for which role and in which capacity
(approver or escalation contact), so an approver's waiting runs are found by index. Filled from
the policy in every existing run's snapshot.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    signers = op.create_table(
        "run_signers",
        sa.Column("run_id", sa.String(length=120), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("capacity", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_signers_run_id_runs")),
        sa.PrimaryKeyConstraint(
            "run_id", "principal_id", "role", "capacity", name=op.f("pk_run_signers")
        ),
    )
    op.create_index(
        op.f("ix_run_signers_principal_id"), "run_signers", ["principal_id"], unique=False
    )
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("snapshot", sa.JSON))
    connection = op.get_bind()
    after = ""
    while True:  # a page of runs at a time, by id: memory stays flat however many runs there are
        page = connection.execute(
            sa.select(runs.c.id, runs.c.snapshot)
            .where(runs.c.id > after)
            .order_by(runs.c.id)
            .limit(BATCH)
        ).all()
        if not page:
            return
        rows = [row for run_id, snapshot in page for row in _named(run_id, snapshot)]
        if rows:
            op.bulk_insert(signers, rows)
        after = page[-1][0]


def _named(run_id: str, snapshot: dict[str, Any] | None) -> list[dict[str, str]]:
    """What services.run_signers.signers gives a new run, from its stored snapshot (a migration
    keeps its own copy: the application's code may change after it)."""
    policy: dict[str, Any] = (snapshot or {}).get("policy") or {}
    named = {
        (principal_id, role, capacity)
        for capacity, key in (("approver", "roles"), ("escalation", "escalation"))
        for role, principal_ids in (policy.get(key) or {}).items()
        for principal_id in principal_ids
    }
    return [
        {"run_id": run_id, "principal_id": principal_id, "role": role, "capacity": capacity}
        for principal_id, role, capacity in sorted(named)
    ]


def downgrade() -> None:
    op.drop_index(op.f("ix_run_signers_principal_id"), table_name="run_signers")
    op.drop_table("run_signers")
