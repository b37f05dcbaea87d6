"""Rows and bytes per table (docs/operations.md, "Retention"): for the ``/metrics`` gauges and
``lowart db stats``.

Bytes: PostgreSQL's ``pg_total_relation_size`` (the table, its indexes and TOAST); on SQLite,
the ``dbstat`` virtual table (the pages of the table and its indexes) when SQLite was built with
it, else an estimate: the mean stored size of up to ``_SAMPLE`` rows times the row count.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.engine import reading

EXACT_PG = "pg_total_relation_size"
EXACT_SQLITE = "dbstat"
ESTIMATE = "estimate"
_SAMPLE = 1000


@dataclass(frozen=True, slots=True)
class TableStats:
    table: str
    rows: int
    bytes: int
    method: str  # how ``bytes`` was measured: one of the three above


async def _tables(conn: AsyncConnection) -> dict[str, list[str]]:
    """Each table's name and column names."""

    def read(sync: sa.Connection) -> dict[str, list[str]]:
        inspector = sa.inspect(sync)
        return {
            name: [c["name"] for c in inspector.get_columns(name)]
            for name in sorted(inspector.get_table_names())
            if name != "alembic_version"
        }

    return await conn.run_sync(read)


async def table_stats(engine: AsyncEngine) -> list[TableStats]:
    """Every table of the database (Alembic's own left out), by name."""
    async with reading(engine) as conn:
        stats = []
        for name, columns in (await _tables(conn)).items():
            table = sa.table(name, *(sa.column(c) for c in columns))
            count = sa.select(sa.func.count()).select_from(table)
            rows = int((await conn.execute(count)).scalar_one())
            size, method = await _bytes(conn, table, rows)
            stats.append(TableStats(name, rows, size, method))
    return stats


async def _bytes(conn: AsyncConnection, table: sa.TableClause, rows: int) -> tuple[int, str]:
    if conn.dialect.name == "postgresql":
        quoted = conn.dialect.identifier_preparer.quote(table.name)
        query = sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))")
        return int((await conn.execute(query, {"t": quoted})).scalar_one()), EXACT_PG
    try:
        query = sa.text(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name = :t)"
        )
        return int((await conn.execute(query, {"t": table.name})).scalar_one()), EXACT_SQLITE
    except OperationalError:  # SQLite built without dbstat
        return await _estimate(conn, table, rows), ESTIMATE


async def _estimate(conn: AsyncConnection, table: sa.TableClause, rows: int) -> int:
    """The mean stored size of a sample of rows, times the row count."""
    sample = sa.select(table).limit(_SAMPLE).subquery()
    sizes = [
        sa.func.coalesce(sa.func.length(sa.cast(c, sa.LargeBinary)), 0) for c in sample.columns
    ]
    total = sum(sizes[1:], sizes[0]) if sizes else sa.literal(0)
    mean = (await conn.execute(sa.select(sa.func.avg(total)))).scalar_one() or 0
    return int(float(mean) * rows)
