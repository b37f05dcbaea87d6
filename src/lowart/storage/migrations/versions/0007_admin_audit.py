"""The admin audit log: one row per admin write.

Revision ID: 0007
Revises: 0006

Additive only (a new table): the previous release keeps serving while it exists
(docs/operations.md, "Upgrades").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_key_id", sa.Text, nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("client_address", sa.Text, nullable=True),
        sa.Column("request_id", sa.Text, nullable=True),
    )
    for column in ("at", "actor", "action", "target"):
        op.create_index(f"ix_admin_audit_{column}", "admin_audit", [column])


def downgrade() -> None:
    op.drop_table("admin_audit")
