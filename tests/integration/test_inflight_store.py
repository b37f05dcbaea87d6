"""Checkpoints and their recovery on SQLite and PostgreSQL: a dead instance's requests in
flight become ``partial`` rows once, even with two instances recovering at the same moment."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import create_engine
from lowart.storage.inflight import InstanceRepository
from lowart.storage.usage import UsageRepository
from lowart.storage.users import UserRepository

NOW = 1_800_000_000.0


def _checkpoint(request_id: str, instance_id: str, user_id: str, tokens: int) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "instance_id": instance_id,
        "user_id": user_id,
        "key_id": None,
        "requested_model": "m",
        "served_model": "m",
        "reservation_id": "",
        "reserved_tokens": 0,
        "prompt_tokens": 3,
        "completion_tokens": tokens,
        "started_at": NOW - 50,
        "updated_at": NOW - 40,
    }


async def _rows(engine: AsyncEngine, query: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(sa.text(query))]


async def test_checkpoints_are_upserted_and_leave_with_their_usage_rows(
    engine: AsyncEngine,
) -> None:
    await UserRepository(engine).upsert("u", {})
    usage = UsageRepository(engine)
    await usage.write_batch([], {}, {}, checkpoints=[_checkpoint("a", "gw-1", "u", 5)])
    later = {**_checkpoint("a", "gw-1", "u", 9), "updated_at": NOW}
    await usage.write_batch([], {}, {}, checkpoints=[later, _checkpoint("b", "gw-1", "u", 1)])
    query = "SELECT request_id, completion_tokens, updated_at FROM inflight_requests"
    assert sorted(await _rows(engine, query)) == [("a", 9, NOW), ("b", 1, NOW - 40)]
    await usage.write_batch([], {"u": 0}, {}, done=["a"])
    assert await _rows(engine, "SELECT request_id FROM inflight_requests") == [("b",)]


async def test_two_instances_recovering_at_once_bill_a_dead_instance_once(
    engine: AsyncEngine, database_url: str
) -> None:
    users = UserRepository(engine)
    for user in ("u", "v"):
        await users.upsert(user, {})
    mine = InstanceRepository(engine)
    await mine.beat("gw-dead", NOW - 100, NOW - 60)
    await mine.beat("gw-live", NOW - 100, NOW)
    dead = [_checkpoint(f"d{n}", "gw-dead", "uv"[n % 2], 10 + n) for n in range(40)]
    orphan = [_checkpoint("o1", "gw-never-beat", "u", 7)]
    live = [_checkpoint("l1", "gw-live", "u", 1000)]
    await UsageRepository(engine).write_batch([], {}, {}, checkpoints=dead + orphan + live)

    other = create_engine(database_url)  # a second instance: its own connections
    try:
        results = await asyncio.gather(
            mine.recover("gw-live", NOW - 30), InstanceRepository(other).recover("gw-x", NOW - 30)
        )
    finally:
        await other.dispose()

    assert sum(r.rows for r in results) == 41
    billed = await _rows(
        engine,
        "SELECT request_id, COUNT(*), MIN(status), MIN(estimated) FROM usage_records"
        " GROUP BY request_id",
    )
    assert sorted(billed) == sorted((c["request_id"], 1, "partial", 1) for c in dead + orphan)
    expected = {
        user: sum(
            c["prompt_tokens"] + c["completion_tokens"]
            for c in dead + orphan
            if c["user_id"] == user
        )
        for user in ("u", "v")
    }
    used = dict(await _rows(engine, "SELECT user_id, token_used FROM users"))
    assert used == expected
    recovered: dict[str, int] = {}
    for result in results:
        for user, tokens in result.deltas.items():
            recovered[user] = recovered.get(user, 0) + tokens
    assert recovered == expected  # what the quota ledgers are told, once in all
    assert await _rows(engine, "SELECT request_id FROM inflight_requests") == [("l1",)]
    assert await _rows(engine, "SELECT instance_id FROM instances") == [("gw-live",)]
    again = await mine.recover("gw-live", NOW - 30)
    assert again.rows == 0
