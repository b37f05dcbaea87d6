"""Request logs: the opt-in, redacted bodies of requests and answers (docs/operations.md,
"Request logs"), in a table of their own.

Revision ID: 0011
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("stream", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("request_body", sa.Text, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column("request_bytes", sa.BigInteger, nullable=False),
        sa.Column("response_bytes", sa.BigInteger, nullable=False),
        sa.Column("truncated", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_request_logs_request_id", "request_logs", ["request_id"])
    op.create_index("ix_request_logs_created_at", "request_logs", ["created_at"])
    op.create_index("ix_request_logs_user_created", "request_logs", ["user_id", "created_at"])
    op.create_index("ix_request_logs_model_created", "request_logs", ["model", "created_at"])


def downgrade() -> None:
    op.drop_table("request_logs")
