"""``lowart backup``: a consistent copy of the SQLite database taken while the gateway serves
(SQLite's backup API); for PostgreSQL, how to take one with ``pg_dump``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import make_url

from lowart.cli.command import Commands, command
from lowart.cli.output import emit_record
from lowart.settings import Settings
from lowart.storage.backup import backup_sqlite, sqlite_file

NOT_SQLITE = 2


def pg_dump_advice(database_url: str) -> str:
    """How to back up a PostgreSQL database (the URL shown without its password)."""
    url = make_url(database_url).set(drivername="postgresql")
    shown = url.render_as_string(hide_password=True)
    return (
        "lowart backup copies SQLite databases; this one is PostgreSQL. Back it up with "
        "pg_dump, which takes a consistent snapshot while the gateway serves:\n"
        f"  pg_dump --format=custom --file=lowart.dump '{shown}'\n"
        "and restore with pg_restore --clean --dbname=… lowart.dump. Keep the master key "
        "(MASTER_KEY) with it, stored apart: the vendor keys in the dump are encrypted under it.\n"
    )


async def _backup(settings: Settings, args: argparse.Namespace) -> int:
    source = sqlite_file(settings.database.url)
    if source is None:
        sys.stderr.write(pg_dump_advice(settings.database.url))
        return NOT_SQLITE
    timeout_s = settings.database.sqlite_busy_timeout_ms / 1000
    size = backup_sqlite(source, args.path, timeout_s)
    emit_record({"database": str(source), "backup": str(args.path), "bytes": size}, args.json)
    if not args.json:
        sys.stderr.write(
            "Keep lowart.key (or MASTER_KEY) too, stored apart: the backup's vendor keys are "
            "encrypted under it.\n"
        )
    return 0


def register(commands: Commands) -> None:
    backup = command(
        commands, "backup", "copy the SQLite database to a new file while it serves", _backup
    )
    backup.add_argument("path", type=Path, help="the new file to write (never overwritten)")
