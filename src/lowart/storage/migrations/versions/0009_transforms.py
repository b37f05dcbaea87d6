"""Transforms: Starlark scripts that reshape a model's requests and answers.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_now = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "transforms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Text, nullable=True),
        sa.Column("deployment", sa.Text, nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("on_request", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("on_response", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("on_chunk", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("on_error", sa.Text, nullable=False, server_default=sa.text("'fail'")),
        sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_index("ix_transforms_model_id", "transforms", ["model_id"])


def downgrade() -> None:
    op.drop_table("transforms")
