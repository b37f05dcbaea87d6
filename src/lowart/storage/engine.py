"""Database engines: SQLite (WAL, busy timeout, BEGIN IMMEDIATE writes) and PostgreSQL.

A SQLite database that stays locked past the busy timeout (another process holds the write lock)
fails closed: the engine raises ``ServiceUnavailable`` (503), in one place for every repository.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from lowart.errors import ServiceUnavailable, StartupError

SQLITE_BUSY_TIMEOUT_MS = 5000
PRIVATE_FILE = 0o600  # the database holds key hashes, prompts and answers: its owner's only
_SQLITE_BUSY = 5  # SQLITE_BUSY: another connection holds the lock past the busy timeout
_SQLITE_LOCKED = 6  # SQLITE_LOCKED: a conflicting lock within the same process
READ_ONLY = {"lowart_read_only": True}


def async_url(database_url: str) -> str:
    """Map a user-facing URL to the async driver the gateway uses."""
    if database_url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + database_url[len("sqlite:") :]
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix) :]
    return database_url


def _is_busy(error: BaseException | None) -> bool:
    """True for SQLite's "database is locked" (and "table is locked") errors."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in {_SQLITE_BUSY, _SQLITE_LOCKED}  # extended codes keep the primary
    return "database is locked" in str(error) or "database table is locked" in str(error)


def _create_private(database: str | None) -> None:
    """Create a missing SQLite file with mode 0600 (SQLite's own would follow the umask, 0644
    under the usual 022). SQLite gives the ``-wal``, ``-shm`` and ``-journal`` files the mode of
    the database file, so they follow. An existing file keeps its mode: the operator's choice."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    except OSError as exc:
        raise StartupError(f"cannot open the database file {database}: {exc.strerror}") from exc


def create_engine(
    database_url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> AsyncEngine:
    """An async engine with the project's SQLite discipline applied."""
    url = async_url(database_url)
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    _create_private(make_url(url).database)
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Every write transaction takes the write lock up front: in WAL mode a read that is later
        # upgraded to a write can fail with SQLITE_BUSY despite the busy timeout.
        if conn.get_execution_options().get("lowart_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # Still locked after the busy timeout: fail closed with a 503 the caller may retry, and
        # never as an internal error. Nothing was written: the transaction is rolled back.
        if _is_busy(context.original_exception):
            raise ServiceUnavailable(
                "The database is busy; the change was not saved. Try again soon."
            ) from context.sqlalchemy_exception

    return engine


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only (a deferred BEGIN on SQLite, so readers never block)."""
    async with engine.connect() as conn:
        yield await conn.execution_options(**READ_ONLY)
