"""Online backups of the SQLite database through SQLite's backup API: the copy is one consistent
state of the database, taken while the gateway keeps serving (docs/operations.md, "Backups")."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import make_url

from lowart.errors import StartupError
from lowart.storage.engine import PRIVATE_FILE, async_url


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite ``DATABASE_URL`` (None: PostgreSQL, or SQLite in memory)."""
    url = make_url(async_url(database_url))
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database)


def backup_sqlite(source: Path, destination: Path, busy_timeout_s: float) -> int:
    """Copy ``source`` into the new file ``destination`` (mode 0600, one self-contained file
    with no WAL) and check the copy's integrity; returns its size in bytes."""
    if not source.is_file():
        raise StartupError(f"no database file at {source}")
    try:
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError as exc:
        raise StartupError(f"{destination} exists already; give a new path") from exc
    except OSError as exc:
        raise StartupError(f"cannot create {destination}: {exc.strerror}") from exc
    src = sqlite3.connect(source, timeout=busy_timeout_s)
    dst = sqlite3.connect(destination)
    try:
        src.backup(dst)  # all pages in one step: one read transaction, one state
        dst.execute("PRAGMA journal_mode=DELETE")
        (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
    finally:
        dst.close()
        src.close()
    if verdict != "ok":
        raise StartupError(f"the copy in {destination} fails SQLite's check: {verdict}")
    return destination.stat().st_size
