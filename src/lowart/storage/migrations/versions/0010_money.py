"""Money: prices per model from a time on, each usage row's cache tokens and cost, budgets on
users and keys, what each budget spent per period, TPM limits, keys' own limits, and teams.

Revision ID: 0010
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None

_ZERO = sa.text("0")
_MONTH = sa.text("'month'")


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Text, nullable=False),
        sa.Column("effective_from", sa.Float, nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False, server_default=_ZERO)
            for name in ("input", "output", "cache_read", "cache_write", "image", "embedding")
        ),
        sa.UniqueConstraint("model_id", "effective_from", name="uq_model_prices_model_from"),
    )
    op.create_index("ix_model_prices_model_id", "model_prices", ["model_id"])
    with op.batch_alter_table("usage_records") as batch:
        for name in ("cache_read_tokens", "cache_write_tokens", "cost"):
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default=_ZERO))
        batch.add_column(sa.Column("team_id", sa.Text, nullable=True))
    for table in ("users", "api_keys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("budget", sa.BigInteger, nullable=True))
            batch.add_column(
                sa.Column("budget_period", sa.Text, nullable=False, server_default=_MONTH)
            )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("team_id", sa.Text, nullable=True))
        batch.add_column(
            sa.Column(
                "token_quota_period", sa.Text, nullable=False, server_default=sa.text("'total'")
            )
        )
    op.create_index("ix_users_team_id", "users", ["team_id"])
    op.create_table(
        "teams",
        sa.Column("team_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("models", sa.Text, nullable=True),
        sa.Column("rpm_limit", sa.Integer, nullable=True),
        sa.Column("tpm_limit", sa.Integer, nullable=True),
        sa.Column("token_quota", sa.BigInteger, nullable=True),
        sa.Column("budget", sa.BigInteger, nullable=True),
        sa.Column("budget_period", sa.Text, nullable=False, server_default=_MONTH),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("models", sa.Text, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=_ZERO),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float, nullable=True),
    )
    op.create_index("ix_budget_alerts_next_at", "budget_alerts", ["next_at"])
    op.create_table(
        "budget_spend",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("spent", sa.BigInteger, nullable=False, server_default=_ZERO),
    )


def downgrade() -> None:
    op.drop_table("budget_spend")
    op.drop_table("budget_alerts")
    with op.batch_alter_table("api_keys") as batch:
        for name in ("expires_at", "models", "tpm_limit", "rpm_limit"):
            batch.drop_column(name)
    op.drop_table("teams")
    op.drop_index("ix_users_team_id", "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_quota_period")
        batch.drop_column("team_id")
        batch.drop_column("tpm_limit")
    for table in ("api_keys", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("budget_period")
            batch.drop_column("budget")
    with op.batch_alter_table("usage_records") as batch:
        for name in ("team_id", "cost", "cache_write_tokens", "cache_read_tokens"):
            batch.drop_column(name)
    op.drop_table("model_prices")
