"""Checkpoints of requests in flight, and the heartbeats of the instances that hold them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inflight_requests",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=True),
        sa.Column("requested_model", sa.Text, nullable=False),
        sa.Column("served_model", sa.Text, nullable=False),
        sa.Column("reservation_id", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("reserved_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_inflight_requests_instance_id", "inflight_requests", ["instance_id"])
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.Text, primary_key=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_index("ix_inflight_requests_instance_id", table_name="inflight_requests")
    op.drop_table("inflight_requests")
