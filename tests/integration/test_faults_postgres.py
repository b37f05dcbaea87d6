"""F13: PostgreSQL goes down mid-run. The gateway fails closed, spools what it served to the
outbox, and writes it when the database is back: the ledger reconciles exactly.

The database is a private cluster of this test's own (the machine's server is never stopped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Gateway, wait_for
from tests.e2e.serve_process import ServeProcess
from tests.private_servers import PrivatePostgres

pytestmark = pytest.mark.pg

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
MOCK = {"model_id": "m", "vendor_type": "Mock", "base_url": ""}


def _query(dsn: str, query: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    return asyncio.run(run())


def _served_until_refused(client: httpx.Client, timeout: float = 5) -> tuple[list[int], float]:
    """Requests in a row until one is refused; returns the tokens of those served, and how
    long after the first the refusal came."""
    served: list[int] = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        response = client.post(CHAT, json=BODY)
        if response.status_code == 503:
            error = response.json()["error"]
            assert error["type"] == "service_unavailable" and error["message"]
            return served, time.monotonic() - started
        assert response.status_code == 200, response.text
        served.append(response.json()["usage"]["total_tokens"])
    raise AssertionError(f"still served {len(served)} requests after {timeout} s")


def test_postgres_down_fails_closed_and_nothing_served_goes_unbilled(
    private_postgres: PrivatePostgres, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(database_url=private_postgres.url, usage_flush_ms=50)
    gw.add_model("m", vendor="Mock", base_url="")
    key = gw.create_user("pat")
    billed: list[int] = []
    with gw.client(key) as client:
        for _ in range(3):
            response = client.post(CHAT, json=BODY)
            assert response.status_code == 200
            billed.append(response.json()["usage"]["total_tokens"])
        private_postgres.stop()
        served_while_down, refused_after = _served_until_refused(client)
        assert refused_after < 2  # fails closed within about one flush interval
        billed += served_while_down
        private_postgres.start()

        def served_again() -> bool:
            response = client.post(CHAT, json=BODY)
            if response.status_code == 200:
                billed.append(response.json()["usage"]["total_tokens"])
            return response.status_code == 200

        wait_for(served_again, timeout=15)
    gw.flush()
    rows = _query(
        private_postgres.dsn, "SELECT prompt_tokens + completion_tokens FROM usage_records"
    )
    (user,) = _query(private_postgres.dsn, "SELECT token_used FROM users WHERE user_id = 'pat'")
    assert not list(gw.settings.outbox_dir.glob("*.json"))  # the outbox drained
    assert sorted(r[0] for r in rows) == sorted(billed)  # one row per served request, no more
    assert user["token_used"] == sum(billed)  # the ledger reconciles exactly


def test_usage_queued_at_shutdown_with_the_database_down_is_written_at_the_next_start(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {
        "DATABASE_URL": private_postgres.url,
        "USAGE_FLUSH_MS": "600000",  # nothing is written before the shutdown
    }
    gw = ServeProcess(tmp_path, env)
    try:
        assert gw.admin("POST", "/admin/models", json=MOCK).status_code == 201
        key = gw.create_user("sam")
        private_postgres.stop()
        with gw.client(key) as client:
            response = client.post(CHAT, json=BODY)
        assert response.status_code == 200  # admitted: no write had failed yet
        assert gw.terminate() == 0
        spooled = list((tmp_path / "lowart-outbox").glob("*.json"))
        assert len(spooled) == 1
    finally:
        gw.kill()
    private_postgres.start()
    again = ServeProcess(tmp_path, {**env, "USAGE_FLUSH_MS": "50"})
    try:
        wait_for(lambda: not list((tmp_path / "lowart-outbox").glob("*.json")), timeout=10)
        rows = _query(
            private_postgres.dsn,
            "SELECT user_id, prompt_tokens + completion_tokens AS t FROM usage_records",
        )
        assert [(r["user_id"], r["t"]) for r in rows] == [
            ("sam", response.json()["usage"]["total_tokens"])
        ]
    finally:
        again.terminate()
