"""Retention (docs/operations.md, "Retention"): which rows expire, and their deletion in small
batches, each its own short transaction, so requests keep being served while it runs.

The table of expiries is one line per kind of row: the table, its time column (Unix seconds),
how long a row is kept past it, and any further condition. A table not created yet (a later
release's) is skipped until it exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.settings import Settings
from lowart.storage.engine import reading
from lowart.storage.idempotency import stale
from lowart.storage.jobs import TERMINAL
from lowart.storage.tables import metadata

Condition = Callable[[sa.Table, float], sa.ColumnElement[bool]]  # (table, now) -> expired too
AfterDelete = Callable[[Sequence[Any]], Awaitable[None]]  # the deleted rows' kept columns


@dataclass(frozen=True)
class Expiry:
    """Rows of ``table`` whose ``column`` is older than ``keep_s`` (None: kept forever)."""

    table: str
    column: str
    keep_s: float | None
    condition: Condition | None = None
    kept: tuple[str, ...] = ()  # columns handed to ``after`` (beside the primary key)
    after: AfterDelete | None = None  # e.g. a file's bytes, deleted once its row is


def _finished_job(table: sa.Table, now: float) -> sa.ColumnElement[bool]:
    return table.c.status.in_(sorted(TERMINAL))


def _past_expiry(table: sa.Table, now: float) -> sa.ColumnElement[bool]:
    return table.c.expires_at <= now


def _stale_key(table: sa.Table, now: float) -> sa.ColumnElement[bool]:
    return stale(now)


def _kept_for(seconds: float) -> float | None:
    return seconds if seconds > 0 else None  # 0: forever


# The longest budget period but ``total``: a month, 31 days and a daylight-saving hour.
_LONGEST_PERIOD_S = 32 * 86400.0


def _past_alert(table: sa.Table, now: float) -> sa.ColumnElement[bool]:
    """A delivered alert of a day, week or month: its id (``<budget>:<period>:<threshold>``)
    keeps it from being raised again only while its period lasts; a ``total`` one, forever."""
    total = sa.or_(table.c.id.like("%:total:80"), table.c.id.like("%:total:100"))
    return sa.and_(table.c.status == "delivered", sa.not_(total))


def _alerts_kept(usage_s: float) -> float | None:
    """Budget alerts report spend: kept as long as usage, and at least past their period."""
    kept = _kept_for(usage_s)
    return None if kept is None else max(kept, _LONGEST_PERIOD_S)


def expiries(settings: Settings, delete_blobs: AfterDelete) -> list[Expiry]:
    """What the sweeper deletes; a new kind of row is one line here and one setting."""
    r = settings.retention
    return [
        Expiry("usage_records", "created_at", _kept_for(r.usage_s)),
        Expiry("jobs", "updated_at", _kept_for(r.jobs_s), _finished_job),
        Expiry("files", "created_at", _kept_for(r.files_s), kept=("path",), after=delete_blobs),
        Expiry("tool_sessions", "updated_at", _kept_for(r.tool_sessions_s), _past_expiry),
        # Kept for IDEMPOTENCY_TTL_S (in expires_at), or until a lost claim's lease ran out.
        Expiry("idempotency_keys", "expires_at", 0.0, _stale_key),
        # Stored responses: RESPONSES_RETENTION_S is in expires_at, set when one is stored.
        Expiry("responses", "expires_at", 0.0),
        Expiry("request_logs", "created_at", _kept_for(r.request_logs_s)),
        Expiry("budget_alerts", "created_at", _alerts_kept(r.usage_s), _past_alert),
    ]


@dataclass(frozen=True)
class Sweep:
    """What one sweep deleted: rows and batches per table."""

    deleted: dict[str, int]
    batches: dict[str, int]


class RetentionSweeper:
    """Deletes expired rows in batches of ``batch``, pausing ``pause_s`` between two."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Sequence[Expiry],
        *,
        batch: int,
        pause_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._engine = engine
        self._table = table
        self._batch = batch
        self._pause_s = pause_s
        self._clock = clock

    async def sweep(self) -> Sweep:
        """One pass over every expiry (the clock is read once: one cut-off per pass)."""
        now = self._clock()
        done = Sweep({}, {})
        for expiry in self._table:
            table = metadata.tables.get(expiry.table)
            if expiry.keep_s is None or table is None:
                continue
            deleted, batches = await self._expire(table, expiry, now)
            done.deleted[expiry.table], done.batches[expiry.table] = deleted, batches
        return done

    async def _expire(self, table: sa.Table, expiry: Expiry, now: float) -> tuple[int, int]:
        assert expiry.keep_s is not None
        expired = table.c[expiry.column] < now - expiry.keep_s
        if expiry.condition is not None:
            expired = sa.and_(expired, expiry.condition(table, now))
        due = await self._count(table, expired)
        deleted = batches = 0
        while deleted < due:
            count = await self._batch_of(table, expired, expiry, min(self._batch, due - deleted))
            if not count:
                break
            deleted += count
            batches += 1
            await asyncio.sleep(self._pause_s)  # let the requests' writes through
        return deleted, batches

    async def _count(self, table: sa.Table, expired: sa.ColumnElement[bool]) -> int:
        """What has expired as the pass begins: rows expiring meanwhile wait for the next pass,
        so a pass ends however fast rows come."""
        async with reading(self._engine) as conn:
            query = sa.select(sa.func.count()).select_from(table).where(expired)
            return int((await conn.execute(query)).scalar_one())

    async def _batch_of(
        self, table: sa.Table, expired: sa.ColumnElement[bool], expiry: Expiry, limit: int
    ) -> int:
        key = list(table.primary_key.columns)
        columns = [*key, *(table.c[name] for name in expiry.kept)]
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(*columns).where(expired).limit(limit))).all()
            if not rows:
                return 0
            ids = [tuple(row[: len(key)]) for row in rows]
            match = sa.tuple_(*key).in_(ids) if len(key) > 1 else key[0].in_([i[0] for i in ids])
            await conn.execute(table.delete().where(match, expired))
        if expiry.after is not None:
            await expiry.after([row[len(key) :] for row in rows])
        return len(rows)
