"""Checkpoints of requests in flight, instance heartbeats, and the recovery of a dead
instance's checkpoints into ``partial`` usage rows (docs/operations.md, "Requests in flight")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.tables import inflight_requests, instances, usage_records, users

_UPDATED = ("completion_tokens", "updated_at")  # what a later checkpoint changes
_COLUMNS = [c.name for c in inflight_requests.c]


def _sqlite_upsert() -> Any:
    """On SQLite a batch is one statement with one parameter, the rows as a JSON array (as in
    ``storage/usage.py``): an ``executemany`` steps once per row, each step waiting for the busy
    event loop to hand the GIL back. The ``WHERE`` tells SQLite's parser that ``ON CONFLICT``
    belongs to the ``INSERT``."""
    rows = sa.func.json_each(sa.bindparam("rows", type_=sa.Text)).table_valued("value")
    picks = [
        sa.func.json_extract(rows.c.value, sa.literal(f"$[{i}]")) for i in range(len(_COLUMNS))
    ]
    insert = sqlite.insert(inflight_requests).from_select(
        _COLUMNS, sa.select(*picks).where(sa.true())
    )
    return insert.on_conflict_do_update(
        index_elements=["request_id"], set_={name: insert.excluded[name] for name in _UPDATED}
    )


_SQLITE_UPSERT = _sqlite_upsert()
_SQLITE_DELETE = sa.text(
    "DELETE FROM inflight_requests WHERE request_id IN (SELECT value FROM json_each(:ids))"
)


def _upsert(dialect: str, table: sa.Table, key: str, updated: Sequence[str]) -> Any:
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_update(
        index_elements=[key], set_={name: insert.excluded[name] for name in updated}
    )


async def write_checkpoints(
    conn: AsyncConnection, done: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """In the usage batch's transaction: drop the rows of requests whose usage row it writes,
    then write the checkpoints of requests still in flight."""
    on_sqlite = conn.dialect.name == "sqlite"
    if done and on_sqlite:
        await conn.execute(_SQLITE_DELETE, {"ids": msgspec.json.encode(list(done)).decode()})
    elif done:
        await conn.execute(
            inflight_requests.delete().where(inflight_requests.c.request_id.in_(done))
        )
    if rows and on_sqlite:
        values = [[row[name] for name in _COLUMNS] for row in rows]
        await conn.execute(_SQLITE_UPSERT, {"rows": msgspec.json.encode(values).decode()})
    elif rows:
        statement = _upsert(conn.dialect.name, inflight_requests, "request_id", _UPDATED)
        await conn.execute(statement, list(rows))


@dataclass(frozen=True, slots=True)
class Recovered:
    """A dead instance's checkpoints, now usage rows: how many, and the tokens per user."""

    rows: int
    deltas: dict[str, int]


class InstanceRepository:
    """Heartbeats, and the recovery of checkpoints whose instance is dead."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def beat(self, instance_id: str, started_at: float, now: float) -> None:
        """Record that this instance is alive at ``now``."""
        row = {"instance_id": instance_id, "started_at": started_at, "heartbeat_at": now}
        async with self._engine.begin() as conn:
            statement = _upsert(conn.dialect.name, instances, "instance_id", ("heartbeat_at",))
            await conn.execute(statement, row)

    async def recover(self, me: str, stale_before: float) -> Recovered:
        """Turn the checkpoints of dead instances into ``partial``, ``estimated`` usage rows
        and settle their tokens into ``token_used``, in one transaction.

        An instance is dead when its heartbeat is older than ``stale_before`` (or it has none).
        Each checkpoint is claimed by deleting it: of two instances recovering at once, the
        second finds nothing left, so every row is billed once.
        """
        async with self._engine.begin() as conn:
            await conn.execute(
                instances.delete().where(
                    instances.c.heartbeat_at < stale_before, instances.c.instance_id != me
                )
            )
            alive = sa.select(instances.c.instance_id)
            claimed = await conn.execute(
                inflight_requests.delete()
                .where(inflight_requests.c.instance_id.not_in(alive))
                .returning(*inflight_requests.c)
            )
            rows = [dict(r) for r in claimed.mappings()]
            deltas = await _bill(conn, rows)
        return Recovered(len(rows), deltas)


def _usage_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint as its usage row: ``partial``, ``estimated``, dated at the checkpoint."""
    return {
        "request_id": row["request_id"],
        "user_id": row["user_id"],
        "key_id": row["key_id"],
        "requested_model": row["requested_model"],
        "served_model": row["served_model"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "estimated": 1,
        "status": "partial",
        "latency_ms": (row["updated_at"] - row["started_at"]) * 1000,
        "ttft_ms": None,
        "created_at": row["updated_at"],
        "deployment": None,  # a checkpoint does not say which
    }


async def _bill(conn: AsyncConnection, rows: list[dict[str, Any]]) -> dict[str, int]:
    if not rows:
        return {}
    deltas: defaultdict[str, int] = defaultdict(int)
    for row in rows:
        deltas[row["user_id"]] += row["prompt_tokens"] + row["completion_tokens"]
    await conn.execute(usage_records.insert(), [_usage_row(row) for row in rows])
    for user_id, delta in deltas.items():
        if delta:
            await conn.execute(
                users.update()
                .where(users.c.user_id == user_id)
                .values(token_used=users.c.token_used + delta)
            )
    return dict(deltas)
