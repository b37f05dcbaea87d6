"""Every stored secret: the columns sealed under the master key, the context each value is bound
to, and their rewriting in one transaction (master-key rotation).

The sealed columns: ``models.api_key``, ``deployments.api_key``, ``mcp_servers.env`` and
``mcp_servers.headers``, and the ``gateway_meta`` values named by the caller (the master-key
check). A value is encrypted with its context as associated data (``SecretBox``), so a sealed
value copied to another row or column does not open. The rotation's caller decides what each
value becomes; if it raises, nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.tables import deployments, gateway_meta, mcp_servers, models

MASTER_CHECK_KEY = "master_key_check"  # the gateway_meta row proving the master key
MASTER_CHECK_CONTEXT = "gateway_meta:master_key_check"


def vendor_key_context(model_id: str) -> str:
    """The context of a model's vendor key (``models.api_key``)."""
    return f"models.api_key:{model_id}"


def deployment_key_context(model_id: str, deployment_id: str) -> str:
    """The context of a deployment's vendor key (``deployments.api_key``)."""
    return f"deployments.api_key:{model_id}/{deployment_id}"


def mcp_secret_context(name: str, field: str) -> str:
    """The context of an MCP server's ``env`` or ``headers`` (``mcp_servers.<field>``)."""
    return f"mcp_servers.{field}:{name}"


# (table, its key columns (a composite key is told as "a/b"), the sealed column)
SEALED_COLUMNS: tuple[tuple[sa.Table, tuple[str, ...], str], ...] = (
    (models, ("model_id",), "api_key"),
    (deployments, ("model_id", "id"), "api_key"),
    (mcp_servers, ("name",), "env"),
    (mcp_servers, ("name",), "headers"),
    (gateway_meta, ("key",), "value"),
)


@dataclass(frozen=True, slots=True)
class Sealed:
    """One stored secret: where it lives and its stored form."""

    table: str
    key: str
    column: str
    value: str


def context_of(item: Sealed) -> str:
    """The context a stored secret was sealed with."""
    if item.table == models.name:
        return vendor_key_context(item.key)
    if item.table == deployments.name:
        return "deployments.api_key:" + item.key  # deployment_key_context's "model/id"
    if item.table == mcp_servers.name:
        return mcp_secret_context(item.key, item.column)
    return MASTER_CHECK_CONTEXT


Reseal = Callable[[Sealed], str]


async def _reseal_column(
    conn: AsyncConnection,
    where: tuple[sa.Table, tuple[str, ...], str],
    reseal: Reseal,
    meta_keys: Collection[str],
) -> int:
    table, key_columns, column = where
    key_cols, value_col = [table.c[name] for name in key_columns], table.c[column]
    query = sa.select(*key_cols, value_col).where(value_col.is_not(None), value_col != "")
    if table is gateway_meta:
        query = query.where(key_cols[0].in_(list(meta_keys)))
    rows = (await conn.execute(query.with_for_update())).all()
    for *keys, value in rows:
        key = "/".join(str(part) for part in keys)
        new = reseal(Sealed(table.name, key, column, str(value)))
        match = sa.and_(*(col == part for col, part in zip(key_cols, keys, strict=True)))
        await conn.execute(table.update().where(match).values({column: new}))
    return len(rows)


async def reseal_all(
    engine: AsyncEngine, reseal: Reseal, meta_keys: Collection[str]
) -> dict[str, int]:
    """Pass every stored secret through ``reseal`` and store the result, in one transaction.

    Returns how many values each table had. Rows are locked while it runs (PostgreSQL ``FOR
    UPDATE``; SQLite holds its write lock from the start).
    """
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for where in SEALED_COLUMNS:
            done = await _reseal_column(conn, where, reseal, meta_keys)
            name = where[0].name
            counts[name] = counts.get(name, 0) + done
    return counts
