"""Users, keys, models, fallbacks, gateway metadata and usage records.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_now = sa.text("CURRENT_TIMESTAMP")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("is_admin", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'active'")),
        sa.Column("rpm_limit", sa.Integer, nullable=True),
        sa.Column("token_quota", sa.BigInteger, nullable=True),
        sa.Column("token_used", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("models", sa.Text, nullable=True),
        *_timestamps(),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "models",
        sa.Column("model_id", sa.Text, primary_key=True),
        sa.Column("vendor_type", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("api_key", sa.Text, nullable=True),
        sa.Column("upstream_model", sa.Text, nullable=True),
        sa.Column("params", sa.Text, nullable=True),
        sa.Column("timeout_s", sa.Float, nullable=False, server_default=sa.text("600")),
        sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
        *_timestamps(),
    )
    op.create_table(
        "model_fallbacks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("primary_model_id", sa.Text, nullable=False),
        sa.Column("fallback_model_id", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_index("ix_model_fallbacks_primary_model_id", "model_fallbacks", ["primary_model_id"])
    op.create_table(
        "gateway_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=True),
        sa.Column("requested_model", sa.Text, nullable=False),
        sa.Column("served_model", sa.Text, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("estimated", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("ttft_ms", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_usage_records_request_id", "usage_records", ["request_id"])
    op.create_index("ix_usage_records_user_id", "usage_records", ["user_id"])
    op.create_index("ix_usage_records_created_at", "usage_records", ["created_at"])


def downgrade() -> None:
    for table in (
        "usage_records",
        "gateway_meta",
        "model_fallbacks",
        "models",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
