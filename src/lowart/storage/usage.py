"""Usage records: batched inserts with atomic quota settlement, and aggregates."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.budgets import add_spent
from lowart.storage.engine import reading
from lowart.storage.inflight import write_checkpoints
from lowart.storage.tables import api_keys, gateway_meta, usage_records, users

GROUPINGS = ("day", "model", "served_model", "user", "team", "key")
_COLUMNS = [c.name for c in usage_records.c if c.name != "id"]
# Columns a row spooled by an older version may lack (docs/api.md, "Prices and cost").
_LATER: dict[str, Any] = {
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "cost": 0,
    "team_id": None,
}


class _RowInsert:
    """Inserts usage rows as the driver's own SQL, with each row's parameters picked by one
    ``itemgetter``: SQLAlchemy's per-row processing was a third of a batch's cost.

    On SQLite the whole batch is one statement with one parameter, the rows as a JSON array read
    by ``json_each``. The driver runs in a thread and releases the GIL for each statement's step;
    an ``executemany`` steps once per row, and under load each step waited for the busy event
    loop to hand the GIL back, so a flush took seconds while holding the write lock. (Multi-row
    ``VALUES`` lists did as well, but each batch size was a new statement for the driver's
    statement cache to keep.) PostgreSQL's driver runs on the event loop and pipelines
    ``executemany``.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        compiled = usage_records.insert().inline().compile(dialect=dialect, column_keys=_COLUMNS)
        order = tuple(compiled.positiontup or ())
        self._sql = compiled.string
        self._values = operator.itemgetter(*order)
        self._from_json: sa.Insert | None = None
        if dialect.name == "sqlite":
            rows = sa.func.json_each(sa.bindparam("rows", type_=sa.Text)).table_valued("value")
            picks = [
                sa.func.json_extract(rows.c.value, sa.literal(f"$[{i}]")) for i in range(len(order))
            ]
            self._from_json = usage_records.insert().from_select(list(order), sa.select(*picks))

    async def __call__(self, conn: AsyncConnection, records: Sequence[Mapping[str, Any]]) -> None:
        rows = [self._values(r if _LATER.keys() <= r.keys() else {**_LATER, **r}) for r in records]
        if self._from_json is not None:
            await conn.execute(self._from_json, {"rows": msgspec.json.encode(rows).decode()})
        else:
            await conn.exec_driver_sql(self._sql, rows)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    user_id: str | None = None
    team_id: str | None = None  # the user's team when the row was written
    key_id: str | None = None
    model: str | None = None  # the model asked for
    served_model: str | None = None  # the model that answered (a fallback's)
    since: float | None = None
    until: float | None = None


def _day(dialect: str) -> sa.ColumnElement[Any]:
    col = usage_records.c.created_at
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.to_timestamp(col).op("AT TIME ZONE")("UTC"), "YYYY-MM-DD")
    return sa.func.date(col, "unixepoch")


def _conditions(flt: UsageFilter) -> list[sa.ColumnElement[bool]]:
    r = usage_records.c
    conditions = []
    if flt.user_id is not None:
        conditions.append(r.user_id == flt.user_id)
    if flt.team_id is not None:
        conditions.append(r.team_id == flt.team_id)
    if flt.key_id is not None:
        conditions.append(r.key_id == flt.key_id)
    if flt.model is not None:
        conditions.append(r.requested_model == flt.model)
    if flt.served_model is not None:
        conditions.append(r.served_model == flt.served_model)
    if flt.since is not None:
        conditions.append(r.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(r.created_at < flt.until)
    return conditions


def _group_key(group_by: str | None, dialect: str) -> Any:
    """The column a report is grouped by (None: not grouped)."""
    r = usage_records.c
    columns = {
        "model": r.requested_model,
        "served_model": r.served_model,
        "user": r.user_id,
        "team": r.team_id,
        "key": r.key_id,
    }
    return _day(dialect) if group_by == "day" else columns.get(group_by or "")


class UsageRepository:
    """Writes ``usage_records`` and settles ``users.token_used``; reads aggregates."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _RowInsert(engine.dialect)

    async def write_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        token_deltas: Mapping[str, int],
        keys_used: Mapping[str, dt.datetime],
        once: str | None = None,
        *,
        done: Sequence[str] = (),
        checkpoints: Sequence[Mapping[str, Any]] = (),
        spent: Mapping[str, int] | None = None,
    ) -> bool:
        """One transaction: insert the rows, add each user's tokens, touch the keys, replace the
        checkpoints of requests in flight (``done``: those whose rows this batch writes), add
        each budget's ``spent``.

        With ``once`` (a spooled batch's id), the id is recorded in the same transaction, and a
        batch whose id is already recorded is skipped. Returns whether the batch was written.
        """
        async with self._engine.begin() as conn:
            if once is not None:
                try:  # a savepoint: another process writing the same batch makes this one fail
                    async with conn.begin_nested():
                        await conn.execute(
                            gateway_meta.insert().values(key="outbox:" + once, value="written")
                        )
                except sa.exc.IntegrityError:
                    return False  # already written (or being written) by another process
            if records:
                await self._insert(conn, records)
            for user_id, delta in token_deltas.items():
                if delta:
                    await conn.execute(
                        users.update()
                        .where(users.c.user_id == user_id)
                        .values(token_used=users.c.token_used + delta)
                    )
            for key_id, when in keys_used.items():
                await conn.execute(
                    api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=when)
                )
            await write_checkpoints(conn, done, checkpoints)
            if spent:
                await add_spent(conn, spent)
        return True

    async def aggregate(self, flt: UsageFilter, group_by: str | None) -> list[dict[str, Any]]:
        """Prompt, completion and total tokens, requests, errors and cost (micro-units),
        optionally grouped."""
        r = usage_records.c
        conditions = _conditions(flt)
        is_error = sa.case((r.status == "ok", 0), else_=1)
        columns: list[Any] = [
            sa.func.coalesce(sa.func.sum(r.prompt_tokens), 0).label("prompt_tokens"),
            sa.func.coalesce(sa.func.sum(r.completion_tokens), 0).label("completion_tokens"),
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(is_error), 0).label("errors"),
            sa.func.coalesce(sa.func.sum(r.cost), 0).label("cost"),
        ]
        async with reading(self._engine) as conn:
            key = _group_key(group_by, conn.dialect.name)
            query = sa.select(*([key.label("key")] if key is not None else []), *columns)
            query = query.where(*conditions)
            if key is not None:
                query = query.group_by(key).order_by(key)
            rows = (await conn.execute(query)).mappings().all()
        out = []
        for row in rows:
            item: dict[str, Any] = {}
            if group_by:
                item[group_by] = row["key"]
            prompt, completion = int(row["prompt_tokens"]), int(row["completion_tokens"])
            item.update(
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                requests=int(row["requests"]),
                errors=int(row["errors"]),
                cost=int(row["cost"]),  # micro-units
            )
            out.append(item)
        return out

    async def count_by_status(self, request_id: str) -> dict[str, int]:
        """How many rows of each status one request wrote (for tests and audits)."""
        r = usage_records.c
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(r.status, sa.func.count())
                .where(r.request_id == request_id)
                .group_by(r.status)
            )
        return {str(status): int(n) for status, n in rows}
