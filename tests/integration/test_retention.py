"""Retention (docs/operations.md, "Retention"): the sweeper, on an injected clock, deletes the
expired rows of every kind (and stored files' bytes) in batches while the gateway serves
requests, keeps what has not expired, and the table gauges follow."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
import pytest

from lowart.services.retention import Retention
from lowart.settings import Settings
from lowart.storage.engine import create_engine
from lowart.storage.files import FileRepository
from lowart.storage.filestore import FileStore
from lowart.storage.idempotency import Claim, IdempotencyStore
from lowart.storage.jobs import JobRepository
from lowart.storage.migrate import migrate
from lowart.storage.retention import RetentionSweeper, expiries
from lowart.storage.table_stats import EXACT_PG, table_stats
from lowart.storage.tables import metadata
from lowart.storage.tools import SessionRow, ToolRepository
from lowart.telemetry.metrics import Metrics
from tests.conftest import Gateway, wait_for

DAY = 86400.0
HELLO = [{"role": "user", "content": "hello"}]
BATCH = 2


def _chat(client: httpx.Client, headers: dict[str, str] | None = None) -> None:
    body = {"model": "mock", "messages": HELLO}
    response = client.post("/v1/chat/completions", json=body, headers=headers or {})
    assert response.status_code == 200, response.text


def _populate(gw: Gateway, key: str) -> list[str]:
    """Usage rows, finished jobs and idempotency records through the API; returns the jobs."""
    jobs = []
    with gw.client(key) as client:
        for i in range(3):
            _chat(client)
            _chat(client, {"Idempotency-Key": f"retention-{i}"})
            body = {"model": "mock", "messages": HELLO, "async": True}
            jobs.append(client.post("/v1/chat/completions", json=body).json()["job_id"])
        done = lambda: all(  # noqa: E731
            client.get(f"/v1/jobs/{j}").json()["status"] == "completed" for j in jobs
        )
        wait_for(done, timeout=20)
    gw.flush()
    return jobs


async def _serve_meanwhile(gw: Gateway, key: str, sweeping: asyncio.Event) -> list[float]:
    """Chat requests while the sweep runs; returns when each one was answered."""
    answered = []
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30) as client:
        while sweeping.is_set() or not answered:
            body = {"model": "mock", "messages": HELLO}
            response = await client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            answered.append(time.monotonic())
    return answered


async def test_the_sweeper_deletes_every_kind_in_batches_while_serving(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(job_poll_s=3600)  # submitted jobs wake the runner; inserted ones wait
    key = gw.create_user("sweepme")
    jobs = _populate(gw, key)
    engine = create_engine(gw.settings.database.url)
    started = time.time()
    files = FileStore(gw.settings.files_root, FileRepository(engine))
    try:
        stored = [
            await files.save(
                file_id=f"file_{i:024d}",
                user_id="sweepme",
                job_id=jobs[0],
                data=b"png" * 100,
                content_type="image/png",
                now=started,
            )
            for i in range(5)
        ]
        tools = ToolRepository(engine)
        for i in range(3):
            await tools.create_session(
                SessionRow(
                    f"sess_{i:024d}",
                    "sweepme",
                    None,
                    "{}",
                    "[]",
                    "done",
                    started + 900,
                    started,
                    started,
                )
            )
        unfinished = await JobRepository(engine).create(
            job_id="job_" + "9" * 24, user_id="sweepme", key_id=None, kind="chat",
            model="mock", request={}, now=started - 90 * DAY,
        )  # fmt: skip
        now = [started + 3 * DAY]
        settings = gw.settings.replace(
            usage_retention_s=10 * DAY, retention_batch=BATCH, retention_pause_s=0.01
        )
        metrics = Metrics()
        retention = Retention(settings, engine, files, metrics, clock=lambda: now[0])
        expected = {table.name for table in metadata.sorted_tables}
        swept_tables = {e.table for e in expiries(settings, files.delete_blobs)} & expected
        # Three days on: only the idempotency records (kept a day) have expired.
        first = await retention.once()
        assert first.deleted == dict.fromkeys(swept_tables, 0) | {"idempotency_keys": 3}
        assert first.batches["idempotency_keys"] == math.ceil(3 / BATCH)
        usage_before = gw.sql("SELECT COUNT(*) FROM usage_records")[0][0]
        assert usage_before == 9
        # Forty days on: everything kept for a limited time has expired; requests go on.
        now[0] = started + 40 * DAY
        sweeping = asyncio.Event()
        sweeping.set()
        serving = asyncio.create_task(_serve_meanwhile(gw, key, sweeping))
        await asyncio.sleep(0)
        sweep_started = time.monotonic()
        second = await retention.once()
        sweep_ended = time.monotonic()
        sweeping.clear()
        answered = await serving
        assert [t for t in answered if sweep_started < t < sweep_ended], "nothing served"
        gw.flush()
        left = gw.sql("SELECT COUNT(*) FROM usage_records")[0][0]
        assert second.deleted["usage_records"] + left == usage_before + len(answered)
        assert second.deleted["usage_records"] >= usage_before
        assert second.deleted["jobs"] == 3 and second.deleted["files"] == 5
        assert second.deleted["tool_sessions"] == 3
        for table, count in second.deleted.items():
            assert second.batches[table] == math.ceil(count / BATCH), table
        assert not [f for f in stored if (gw.settings.files_root / f.path).exists()]
        remaining = {row[0] for row in gw.sql("SELECT job_id FROM jobs")}
        assert remaining == {unfinished.job_id}  # not finished: never swept
        assert gw.sql("SELECT COUNT(*) FROM files")[0][0] == 0
        text = metrics.render().decode()
        assert 'gateway_table_rows{table="jobs"} 1.0' in text
        assert 'gateway_table_bytes{table="usage_records"}' in text
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=gw.url) as client:
        served = (await client.get("/metrics")).text  # the gateway's own pass, at its start
    assert 'gateway_table_rows{table="users"}' in served


@pytest.mark.pg
async def test_on_postgresql_composite_keys_are_swept_and_sizes_measured(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        await migrate(engine)
        now = [1000.0]
        store = IdempotencyStore(engine, ttl_s=10, lease_s=5, clock=lambda: now[0])
        for i in range(5):
            claim = await store.claim("u", f"k{i}", "/v1/chat/completions", "digest")
            assert isinstance(claim, Claim)
        now[0] = 2000.0  # every lease lost
        table = [e for e in expiries(Settings(), _no_blobs) if e.table == "idempotency_keys"]
        sweeper = RetentionSweeper(engine, table, batch=BATCH, pause_s=0, clock=lambda: now[0])
        swept = await sweeper.sweep()
        assert swept.deleted == {"idempotency_keys": 5}
        assert swept.batches == {"idempotency_keys": 3}
        sizes = {s.table: s for s in await table_stats(engine)}
        assert sizes["idempotency_keys"].rows == 0 and sizes["users"].method == EXACT_PG
        assert sizes["usage_records"].bytes > 0
    finally:
        await engine.dispose()


async def _no_blobs(rows: object) -> None:
    raise AssertionError("idempotency records have no files")
