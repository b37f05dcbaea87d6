"""Money: prices per model from a time on, and each usage row's cache tokens and cost.

Revision ID: 0010
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None

_ZERO = sa.text("0")


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


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name in ("cost", "cache_write_tokens", "cache_read_tokens"):
            batch.drop_column(name)
    op.drop_table("model_prices")
