"""``lowart db stats``: rows and bytes per table, as the ``/metrics`` gauges show them
(docs/operations.md, "Retention"), read from the database without starting the gateway."""

from __future__ import annotations

import argparse

from lowart.cli.command import Commands, command, group
from lowart.cli.output import emit_rows
from lowart.settings import Settings
from lowart.storage.engine import create_engine
from lowart.storage.table_stats import table_stats

COLUMNS = ("table", "rows", "bytes", "method")


async def _stats(settings: Settings, args: argparse.Namespace) -> None:
    engine = create_engine(
        settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )
    try:
        stats = await table_stats(engine)
    finally:
        await engine.dispose()
    rows = [{"table": t.table, "rows": t.rows, "bytes": t.bytes, "method": t.method} for t in stats]
    if not args.json:
        total = {"table": "total", "rows": sum(t.rows for t in stats)}
        rows.append({**total, "bytes": sum(t.bytes for t in stats), "method": ""})
    emit_rows(rows, COLUMNS, args.json)


def register(commands: Commands) -> None:
    db = group(commands, "db", "the database")
    command(
        db,
        "stats",
        "rows and bytes per table; `method` says how the bytes were measured "
        "(pg_total_relation_size, dbstat, or an estimate)",
        _stats,
    )
