"""One contract suite for the SQL repositories, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.errors import ServiceUnavailable, StartupError
from lowart.security.keys import display_prefix, generate_key, hash_key
from lowart.storage.engine import async_url, create_engine
from lowart.storage.meta import MetaRepository
from lowart.storage.migrate import head_revision, migrate
from lowart.storage.models import ModelRepository
from lowart.storage.rows import iso
from lowart.storage.snapshot import load_snapshot
from lowart.storage.usage import UsageFilter, UsageRepository
from lowart.storage.users import UserRepository

DAY1 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC).timestamp()
DAY2 = dt.datetime(2025, 3, 2, 23, 59, tzinfo=dt.UTC).timestamp()
DAY3 = dt.datetime(2025, 3, 3, 0, 30, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def users(engine: AsyncEngine) -> UserRepository:
    return UserRepository(engine)


@pytest.fixture
def models(engine: AsyncEngine) -> ModelRepository:
    return ModelRepository(engine)


@pytest.fixture
def usage(engine: AsyncEngine) -> UsageRepository:
    return UsageRepository(engine)


async def _sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(statement)


async def _scalar(engine: AsyncEngine, statement: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql(statement)).scalar()


def _record(user_id: str, model: str, created_at: float, **fields: Any) -> dict[str, Any]:
    values = {
        "request_id": "req-" + generate_key()[3:15],
        "user_id": user_id,
        "key_id": None,
        "requested_model": model,
        "served_model": model,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "estimated": 0,
        "status": "ok",
        "latency_ms": 12.5,
        "ttft_ms": None,
        "created_at": created_at,
        "deployment": "default",
    }
    row = values | fields
    return {"cost": cost_of_row(row["prompt_tokens"], row["completion_tokens"])} | row


def cost_of_row(prompt: int, completion: int) -> int:
    """A cost for the test rows, linear in their tokens, so that every sum is known."""
    return 7 * prompt + completion


# --- engine and migrations -----------------------------------------------------------------


def test_async_url() -> None:
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_migrate_twice_is_idempotent(engine: AsyncEngine, users: UserRepository) -> None:
    await users.upsert("kept", {"name": "Kept"})
    await migrate(engine)
    assert await _scalar(engine, "SELECT version_num FROM alembic_version") == head_revision()
    assert await _scalar(engine, "SELECT count(*) FROM alembic_version") == 1
    kept = await users.get("kept")
    assert kept is not None
    assert kept.name == "Kept"


async def test_sqlite_uses_wal(tmp_path: Path) -> None:
    eng = create_engine(f"sqlite:///{tmp_path}/wal.db")
    try:
        await migrate(eng)
        assert await _scalar(eng, "PRAGMA journal_mode") == "wal"
        assert await _scalar(eng, "PRAGMA busy_timeout") == 5000
        assert await _scalar(eng, "PRAGMA foreign_keys") == 1
    finally:
        await eng.dispose()
    assert (tmp_path / "wal.db").exists()


async def test_sqlite_locked_past_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    eng = create_engine(f"sqlite:///{tmp_path}/locked.db", busy_timeout_ms=150)
    try:
        await migrate(eng)
        assert await _scalar(eng, "PRAGMA busy_timeout") == 150
        users = UserRepository(eng)
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with pytest.raises(ServiceUnavailable):
                await users.upsert("u", {"name": "U"})
            assert await users.get("u") is None  # WAL: reads go on; the write left nothing
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await users.upsert("u", {"name": "U"})  # the same engine writes again once released
        assert (await users.get("u")) is not None
    finally:
        await eng.dispose()


# --- users and keys ------------------------------------------------------------------------


async def test_user_upsert_creates_then_updates_given_fields(users: UserRepository) -> None:
    created, is_new = await users.upsert(
        "alice", {"name": "Alice", "rpm_limit": 10, "token_quota": 1000, "models": ["gpt"]}
    )
    assert is_new is True
    assert (created.user_id, created.name, created.rpm_limit) == ("alice", "Alice", 10)
    assert created.token_quota == 1000
    assert created.models == ("gpt",)
    assert created.status == "active"
    assert created.token_used == 0
    assert created.is_admin is False

    updated, is_new = await users.upsert("alice", {"rpm_limit": 20})
    assert is_new is False
    assert updated.rpm_limit == 20
    assert (updated.name, updated.token_quota, updated.models) == ("Alice", 1000, ("gpt",))

    unchanged, is_new = await users.upsert("alice", {})
    assert is_new is False
    assert unchanged.rpm_limit == 20


async def test_upsert_null_means_unlimited_and_all_models(users: UserRepository) -> None:
    await users.upsert("u", {"rpm_limit": 5, "token_quota": 50, "models": ["a"]})
    row, _ = await users.upsert("u", {"rpm_limit": None, "token_quota": None, "models": None})
    assert (row.rpm_limit, row.token_quota, row.models) == (None, None, None)


async def test_upsert_ignores_unknown_fields(users: UserRepository) -> None:
    row, created = await users.upsert("u", {"name": "U", "not_a_column": 1})
    assert created
    assert row.name == "U"


async def test_user_update(users: UserRepository) -> None:
    await users.upsert("bob", {"name": "Bob", "token_quota": 100})
    row = await users.update("bob", {"token_used": 42, "status": "disabled", "is_admin": True})
    assert row is not None
    assert (row.token_used, row.status, row.is_admin, row.active) == (42, "disabled", True, False)
    assert row.name == "Bob"
    assert row.token_quota == 100
    fetched = await users.get("bob")
    assert fetched == row


async def test_update_unknown_user(users: UserRepository) -> None:
    assert await users.update("nobody", {"rpm_limit": 1}) is None
    assert await users.get("nobody") is None


async def test_list_users_and_any_admin(users: UserRepository) -> None:
    assert await users.any_admin() is False
    await users.upsert("a", {})
    await users.upsert("root", {"is_admin": True})
    assert {u.user_id for u in await users.list_users()} == {"a", "root"}
    assert await users.any_admin() is True


async def test_add_list_and_revoke_keys(users: UserRepository) -> None:
    await users.upsert("carol", {})
    raw = generate_key()
    added = await users.add_key("carol", "key_1", hash_key(raw), display_prefix(raw), "laptop")
    assert (added.id, added.user_id, added.key_hash) == ("key_1", "carol", hash_key(raw))
    assert (added.prefix, added.name) == (raw[:7], "laptop")
    assert added.created_at is not None
    assert added.revoked_at is None
    assert added.last_used_at is None
    await users.add_key("carol", "key_2", hash_key(generate_key()), "lw-xxxx", None)

    listed = await users.list_keys("carol")
    assert [k.id for k in listed] == ["key_1", "key_2"]
    assert await users.list_keys("nobody") == []

    assert await users.revoke_key("key_1") is True
    assert await users.revoke_key("key_1") is True  # revoking twice: the key exists
    assert await users.revoke_key("key_unknown") is False
    by_id = {k.id: k for k in await users.list_keys("carol")}
    assert by_id["key_1"].revoked_at is not None
    assert by_id["key_2"].revoked_at is None


async def test_disable_revokes_all_keys_and_keeps_the_row(users: UserRepository) -> None:
    await users.upsert("dave", {"name": "Dave", "token_quota": 10})
    await users.add_key("dave", "k1", hash_key("lw-1"), "lw-1", None)
    await users.add_key("dave", "k2", hash_key("lw-2"), "lw-2", None)
    await users.upsert("erin", {})
    await users.add_key("erin", "k3", hash_key("lw-3"), "lw-3", None)

    assert await users.disable("dave") is True
    dave = await users.get("dave")
    assert dave is not None
    assert dave.status == "disabled"
    assert dave.name == "Dave"
    assert all(k.revoked_at is not None for k in await users.list_keys("dave"))
    assert [k.revoked_at for k in await users.list_keys("erin")] == [None]
    assert await users.disable("nobody") is False


# --- models and fallbacks ------------------------------------------------------------------


async def test_model_create_and_duplicate(models: ModelRepository) -> None:
    params = {"timeouts": {"connect": 2}, "mock": {"reply": "héllo ✓"}, "list": [1, None, 2.5]}
    row = await models.create(
        "gpt",
        {
            "vendor_type": "OpenAI",
            "base_url": "https://api.openai.com/v1",
            "api_key": "enc:v1:abc",
            "upstream_model": "gpt-4o",
            "params": params,
            "timeout_s": 30,
            "enabled": True,
        },
    )
    assert row is not None
    assert (row.model_id, row.vendor_type, row.base_url) == (
        "gpt",
        "OpenAI",
        "https://api.openai.com/v1",
    )
    assert (row.api_key, row.upstream_model, row.timeout_s, row.enabled) == (
        "enc:v1:abc",
        "gpt-4o",
        30.0,
        True,
    )
    assert row.params == params
    assert await models.get("gpt") == row
    assert await models.create("gpt", {"vendor_type": "Mock"}) is None
    again = await models.get("gpt")
    assert again is not None
    assert again.vendor_type == "OpenAI"


async def test_model_defaults(models: ModelRepository) -> None:
    row = await models.create("mock", {"vendor_type": "Mock"})
    assert row is not None
    assert (row.base_url, row.api_key, row.upstream_model) == ("", None, None)
    assert (row.params, row.timeout_s, row.enabled) == ({}, 600.0, True)


async def test_model_update(models: ModelRepository) -> None:
    await models.create("m", {"vendor_type": "OpenAI", "base_url": "http://a/v1", "api_key": "k"})
    row = await models.update("m", {"base_url": "http://b/v1", "enabled": False})
    assert row is not None
    assert (row.base_url, row.enabled, row.api_key, row.vendor_type) == (
        "http://b/v1",
        False,
        "k",
        "OpenAI",
    )
    cleared = await models.update("m", {"api_key": None, "params": {"x": 1}})
    assert cleared is not None
    assert cleared.api_key is None
    assert cleared.params == {"x": 1}
    assert await models.update("ghost", {"enabled": True}) is None


async def test_list_models(models: ModelRepository) -> None:
    for name in ("b", "a", "c"):
        await models.create(name, {"vendor_type": "Mock"})
    assert [m.model_id for m in await models.list_models()] == ["a", "b", "c"]


async def test_fallbacks_keep_the_given_order(models: ModelRepository) -> None:
    for name in ("a", "b", "c", "d"):
        await models.create(name, {"vendor_type": "Mock"})
    await models.set_fallbacks("a", ["d", "b", "c"])
    chain = await models.fallbacks("a")
    assert [f.fallback_model_id for f in chain] == ["d", "b", "c"]
    assert [f.priority for f in chain] == [0, 1, 2]
    assert all(f.primary_model_id == "a" for f in chain)

    await models.set_fallbacks("a", ["c"])
    assert [f.fallback_model_id for f in await models.fallbacks("a")] == ["c"]
    await models.set_fallbacks("a", [])
    assert await models.fallbacks("a") == []


async def test_delete_model_removes_its_fallback_rows(models: ModelRepository) -> None:
    for name in ("a", "b", "c"):
        await models.create(name, {"vendor_type": "Mock"})
    await models.set_fallbacks("a", ["b", "c"])
    await models.set_fallbacks("b", ["a"])
    await models.set_fallbacks("c", ["a", "b"])

    assert await models.delete("a") is True
    assert await models.get("a") is None
    assert await models.fallbacks("a") == []
    assert await models.fallbacks("b") == []  # b -> a is gone too
    assert [f.fallback_model_id for f in await models.fallbacks("c")] == ["b"]
    assert await models.delete("a") is False


# --- snapshot ------------------------------------------------------------------------------


async def test_snapshot_excludes_revoked_keys(engine: AsyncEngine, users: UserRepository) -> None:
    await users.upsert("u", {})
    await users.add_key("u", "live", hash_key("lw-live"), "lw-live", None)
    await users.add_key("u", "dead", hash_key("lw-dead"), "lw-dead", None)
    await users.revoke_key("dead")
    snapshot = await load_snapshot(engine)
    assert [k.id for k in snapshot.keys] == ["live"]
    assert [u.user_id for u in snapshot.users] == ["u"]


async def test_snapshot_orders_fallbacks_by_priority_then_id(
    engine: AsyncEngine, models: ModelRepository
) -> None:
    for name in ("a", "b", "c", "d", "e", "z"):
        await models.create(name, {"vendor_type": "Mock"})
    await _sql(
        engine,
        "INSERT INTO model_fallbacks(primary_model_id, fallback_model_id, priority) VALUES "
        "('z', 'a', 0), ('a', 'e', 5), ('a', 'c', 1), ('a', 'b', 1), ('a', 'd', 0)",
    )
    snapshot = await load_snapshot(engine)
    pairs = [(f.primary_model_id, f.fallback_model_id, f.priority) for f in snapshot.fallbacks]
    assert pairs == [("a", "d", 0), ("a", "c", 1), ("a", "b", 1), ("a", "e", 5), ("z", "a", 0)]
    assert [m.model_id for m in sorted(snapshot.models, key=lambda m: m.model_id)] == [
        "a",
        "b",
        "c",
        "d",
        "e",
        "z",
    ]
    assert [f.fallback_model_id for f in await models.fallbacks("a")] == ["d", "c", "b", "e"]


# --- usage ---------------------------------------------------------------------------------


async def test_write_batch_inserts_rows_settles_tokens_and_touches_keys(
    engine: AsyncEngine, users: UserRepository, usage: UsageRepository
) -> None:
    await users.upsert("u", {"token_quota": 1000})
    await users.upsert("v", {})
    await users.add_key("u", "k", hash_key("lw-k"), "lw-k", None)
    when = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    records = [_record("u", "gpt", DAY1, request_id="r1"), _record("u", "gpt", DAY1)]
    await usage.write_batch(records, {"u": 30, "v": 0}, {"k": when})

    assert await _scalar(engine, "SELECT count(*) FROM usage_records") == 2
    assert await usage.count_by_status("r1") == {"ok": 1}
    u = await users.get("u")
    v = await users.get("v")
    assert u is not None
    assert v is not None
    assert (u.token_used, v.token_used) == (30, 0)
    [key] = await users.list_keys("u")
    assert key.last_used_at is not None
    assert iso(key.last_used_at) == iso(when)

    await usage.write_batch([], {"u": -5}, {})  # an admin-side correction
    u = await users.get("u")
    assert u is not None
    assert u.token_used == 25


async def test_a_large_batch_keeps_every_row_and_column(
    engine: AsyncEngine, usage: UsageRepository
) -> None:
    """More rows than SQLite binds in one multi-row statement: each lands whole, in order."""
    records = [
        _record(
            f"user{i % 7}",
            f"model{i % 3}",
            DAY1 + i,
            request_id=f"req{i}",
            key_id=f"key{i}" if i % 2 else None,
            prompt_tokens=i,
            completion_tokens=2 * i,
            estimated=i % 2,
            status="ok" if i % 5 else "error",
            latency_ms=i / 4,
            ttft_ms=i / 8 if i % 3 else None,
        )
        for i in range(6_001)
    ]
    await usage.write_batch(records, {}, {})
    columns = ", ".join(records[0])
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(f"SELECT {columns} FROM usage_records ORDER BY id")
        stored = [dict(row._mapping) for row in result]
    assert stored == records


async def test_concurrent_settlements_are_atomic(
    users: UserRepository, usage: UsageRepository
) -> None:
    await users.upsert("busy", {"token_quota": 10_000})
    await asyncio.gather(
        *(
            usage.write_batch([_record("busy", "gpt", DAY1, request_id=f"r{i}")], {"busy": 7}, {})
            for i in range(50)
        )
    )
    row = await users.get("busy")
    assert row is not None
    assert row.token_used == 350
    [total] = await usage.aggregate(UsageFilter(user_id="busy"), None)
    assert total["requests"] == 50


async def test_settlement_adds_to_a_hand_edited_value(
    engine: AsyncEngine, users: UserRepository, usage: UsageRepository
) -> None:
    await users.upsert("u", {})
    await _sql(engine, "UPDATE users SET token_used = 100 WHERE user_id = 'u'")
    await usage.write_batch([], {"u": 5}, {})
    row = await users.get("u")
    assert row is not None
    assert row.token_used == 105


@pytest.fixture
async def usage_rows(usage: UsageRepository) -> UsageRepository:
    await usage.write_batch(
        [
            _record("alice", "gpt", DAY1, prompt_tokens=100, completion_tokens=10),
            _record("alice", "claude", DAY1, prompt_tokens=50, completion_tokens=5),
            _record("alice", "gpt", DAY2, prompt_tokens=1, completion_tokens=0, status="error"),
            _record("bob", "gpt", DAY2, prompt_tokens=20, completion_tokens=2),
            _record("bob", "gpt", DAY3, prompt_tokens=3, completion_tokens=4, status="partial"),
        ],
        {},
        {},
    )
    return usage


def _totals(prompt: int, completion: int, requests: int, errors: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "requests": requests,
        "errors": errors,
        "cost": cost_of_row(prompt, completion),
    }


async def test_aggregate_totals(usage_rows: UsageRepository) -> None:
    assert await usage_rows.aggregate(UsageFilter(), None) == [_totals(174, 21, 5, 2)]


async def test_aggregate_empty(usage: UsageRepository) -> None:
    assert await usage.aggregate(UsageFilter(), None) == [_totals(0, 0, 0, 0)]
    assert await usage.aggregate(UsageFilter(), "model") == []


async def test_aggregate_filters(usage_rows: UsageRepository) -> None:
    agg = usage_rows.aggregate
    assert await agg(UsageFilter(user_id="bob"), None) == [_totals(23, 6, 2, 1)]
    assert await agg(UsageFilter(model="claude"), None) == [_totals(50, 5, 1, 0)]
    assert await agg(UsageFilter(user_id="alice", model="gpt"), None) == [_totals(101, 10, 2, 1)]
    assert await agg(UsageFilter(since=DAY2), None) == [_totals(24, 6, 3, 2)]
    assert await agg(UsageFilter(until=DAY2), None) == [_totals(150, 15, 2, 0)]  # until excludes
    assert await agg(UsageFilter(since=DAY2, until=DAY3), None) == [_totals(21, 2, 2, 1)]
    assert await agg(UsageFilter(user_id="nobody"), None) == [_totals(0, 0, 0, 0)]


async def test_aggregate_group_by_day(usage_rows: UsageRepository) -> None:
    assert await usage_rows.aggregate(UsageFilter(), "day") == [
        {"day": "2025-03-01"} | _totals(150, 15, 2, 0),
        {"day": "2025-03-02"} | _totals(21, 2, 2, 1),
        {"day": "2025-03-03"} | _totals(3, 4, 1, 1),
    ]


async def test_aggregate_group_by_model(usage_rows: UsageRepository) -> None:
    assert await usage_rows.aggregate(UsageFilter(), "model") == [
        {"model": "claude"} | _totals(50, 5, 1, 0),
        {"model": "gpt"} | _totals(124, 16, 4, 2),
    ]


async def test_aggregate_group_by_user_with_filter(usage_rows: UsageRepository) -> None:
    assert await usage_rows.aggregate(UsageFilter(model="gpt"), "user") == [
        {"user": "alice"} | _totals(101, 10, 2, 1),
        {"user": "bob"} | _totals(23, 6, 2, 1),
    ]


# --- meta ----------------------------------------------------------------------------------


async def test_meta_put_if_absent(engine: AsyncEngine) -> None:
    meta = MetaRepository(engine)
    assert await meta.get("master_key_check") is None
    assert await meta.put_if_absent("master_key_check", "first") is True
    assert await meta.put_if_absent("master_key_check", "second") is False
    assert await meta.get("master_key_check") == "first"


# --- rows written by hand ------------------------------------------------------------------


async def test_hand_written_rows_get_server_defaults(
    engine: AsyncEngine, users: UserRepository, models: ModelRepository
) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("INSERT INTO users(user_id) VALUES ('h')")
        await conn.exec_driver_sql(
            "INSERT INTO models(model_id, vendor_type, base_url, api_key) "
            "VALUES ('hand', 'openai', 'http://127.0.0.1:9/v1', 'sk-plain')"
        )
        await conn.exec_driver_sql(
            "INSERT INTO models(model_id, vendor_type, base_url, api_key) "
            "VALUES ('backup', 'MOCK', '', NULL)"
        )
        await conn.exec_driver_sql(
            "INSERT INTO model_fallbacks(primary_model_id, fallback_model_id) "
            "VALUES ('hand', 'backup')"
        )

    user = await users.get("h")
    assert user is not None
    assert (user.status, user.active, user.token_used, user.is_admin) == ("active", True, 0, False)
    assert (user.name, user.rpm_limit, user.token_quota, user.models) == (None, None, None, None)
    assert user.created_at is not None

    model = await models.get("hand")
    assert model is not None
    assert (model.vendor_type, model.base_url, model.api_key) == (
        "openai",
        "http://127.0.0.1:9/v1",
        "sk-plain",
    )
    assert (model.enabled, model.params, model.upstream_model, model.timeout_s) == (
        True,
        {},
        None,
        600.0,
    )

    [fb] = await models.fallbacks("hand")
    assert (fb.fallback_model_id, fb.priority) == ("backup", 0)

    snapshot = await load_snapshot(engine)
    assert [u.user_id for u in snapshot.users] == ["h"]
    assert {m.model_id for m in snapshot.models} == {"hand", "backup"}
    assert [(f.primary_model_id, f.fallback_model_id) for f in snapshot.fallbacks] == [
        ("hand", "backup")
    ]


async def test_hand_written_models_list_is_read(engine: AsyncEngine, users: UserRepository) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO users(user_id, models) VALUES ('j', '[\"gpt\", \"mock\"]')"
        )
        await conn.exec_driver_sql("INSERT INTO users(user_id, models) VALUES ('c', 'gpt, mock')")
    j = await users.get("j")
    c = await users.get("c")
    assert j is not None
    assert c is not None
    assert j.models == ("gpt", "mock")
    assert c.models == ("gpt", "mock")


async def test_unreadable_params_count_as_empty(
    engine: AsyncEngine, models: ModelRepository
) -> None:
    await _sql(
        engine,
        "INSERT INTO models(model_id, vendor_type, base_url, api_key, params) "
        "VALUES ('p', 'Mock', '', NULL, '{not json')",
    )
    row = await models.get("p")
    assert row is not None
    assert row.params == {}


async def test_sa_core_sees_the_same_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    assert {"users", "api_keys", "models", "model_fallbacks", "gateway_meta", "usage_records"} <= (
        names
    )


async def test_a_spooled_batch_is_written_once_even_when_two_processes_race(
    engine: AsyncEngine, users: UserRepository, usage: UsageRepository
) -> None:
    await users.upsert("spool", {"token_quota": 1000})
    records = [_record("spool", "gpt", DAY1, request_id="s1")]
    results = await asyncio.gather(
        *(usage.write_batch(records, {"spool": 30}, {}, once="batch-1") for _ in range(4))
    )
    assert sorted(results) == [False, False, False, True]
    assert await usage.write_batch(records, {"spool": 30}, {}, once="batch-1") is False
    row = await users.get("spool")
    assert row is not None and row.token_used == 30
    assert await usage.count_by_status("s1") == {"ok": 1}


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


async def test_a_new_sqlite_database_and_its_wal_are_private_under_umask_022(
    tmp_path: Path,
) -> None:
    """SQLite creates its file by the umask (0644 under 022); the WAL and SHM copy its mode."""
    db = tmp_path / "private.db"
    previous = os.umask(0o022)
    try:
        engine = create_engine(f"sqlite:///{db}")
        await migrate(engine)
        modes = _modes(tmp_path)
        await engine.dispose()
    finally:
        os.umask(previous)
    assert modes == {"private.db": 0o600, "private.db-wal": 0o600, "private.db-shm": 0o600}
    with pytest.raises(StartupError, match="cannot open the database file"):
        create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
