"""Deployments: a model's further upstreams, the deployment that served each usage row, and
the one that served each stored response (a continuation prefers it).

Revision ID: 0008
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0010"
branch_labels = None
depends_on = None

_now = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("model_id", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("vendor_type", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("api_key", sa.Text, nullable=True),
        sa.Column("upstream_model", sa.Text, nullable=True),
        sa.Column("params", sa.Text, nullable=True),
        sa.Column("weight", sa.Float, nullable=False, server_default=sa.text("1")),
        sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("rpm_cap", sa.Integer, nullable=True),
        sa.Column("tpm_cap", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("deployment", sa.Text, nullable=True))
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("deployment", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("deployment")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("deployment")
    op.drop_table("deployments")
