"""RPM windows shared through the machine's Redis, and instances that reload together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from lowart.errors import ServiceUnavailable
from lowart.limits.memory import MemoryRateLimiter
from lowart.limits.redis import RedisRateLimiter
from lowart.limits.resp import RespClient
from tests.conftest import MASTER_KEY, Gateway, wait_for
from tests.integration.test_redis_quota import resp
from tests.integration.test_tools import (
    chat,
    confirm,
    new_user,
    server_status,
    sessions,
    setup_tools,
    text_of,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@pytest.fixture
async def client() -> AsyncIterator[RespClient]:
    async with resp() as client:
        yield client


def _limiter(client: RespClient, fallback: MemoryRateLimiter | None = None) -> RedisRateLimiter:
    prefix = f"lowart:test:{secrets.token_hex(6)}:"
    return RedisRateLimiter(client, 60, prefix=prefix, fallback=fallback)


async def test_the_window_admits_exactly_the_limit(client: RespClient) -> None:
    limiter = _limiter(client)
    decisions = [await limiter.admit("u", 5) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert all(0 < d.reset_s <= 60 for d in decisions)
    assert (await limiter.admit("someone-else", 5)).allowed  # per user


async def test_concurrent_admissions_are_atomic(client: RespClient) -> None:
    limiter = _limiter(client)
    decisions = await asyncio.gather(*(limiter.admit("u", 10) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10


async def test_redis_down_fails_closed_or_degrades_to_a_local_window() -> None:
    async with resp("redis://127.0.0.1:9/0", timeout_s=0.2) as dead:
        with pytest.raises(ServiceUnavailable):
            await _limiter(dead).admit("u", 5)
        degraded = _limiter(dead, fallback=MemoryRateLimiter(60))
        decisions = [await degraded.admit("u", 2) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]  # never unlimited


def _pair(make_gateway: Callable[..., Gateway], pg_url: str) -> tuple[Gateway, Gateway]:
    settings = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "master_key": MASTER_KEY,
        "cache_refresh_s": 60.0,
    }  # only pub/sub can make the second one notice
    return make_gateway(**settings), make_gateway(**settings)


@pytest.mark.pg
def test_two_instances_share_one_rpm_window(
    make_gateway: Callable[..., Gateway], pg_url: str
) -> None:
    a, b = _pair(make_gateway, pg_url)
    key = a.create_user("shared-" + secrets.token_hex(4), rpm_limit=5)
    wait_for(
        lambda: (
            httpx.get(b.url + "/v1/models", headers={"authorization": f"Bearer {key}"}).status_code
            == 200
        ),
        timeout=1,
    )
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    statuses = []
    for i in range(12):
        gateway = a if i % 2 else b
        with gateway.client(key) as client:
            statuses.append(client.post("/v1/chat/completions", json=body).status_code)
    assert statuses.count(200) == 5 and statuses.count(429) == 7


@pytest.mark.pg
def test_a_key_revoked_on_one_instance_is_refused_on_the_other(
    make_gateway: Callable[..., Gateway], pg_url: str
) -> None:
    a, b = _pair(make_gateway, pg_url)
    user_id = "revoked-" + secrets.token_hex(4)
    key = a.create_user(user_id)

    def works_on_b() -> bool:
        return (
            httpx.get(b.url + "/v1/models", headers={"authorization": f"Bearer {key}"}).status_code
            == 200
        )

    wait_for(works_on_b, timeout=1)
    [listed] = a.admin("GET", f"/admin/users/{user_id}/keys").json()["data"]
    assert a.admin("DELETE", f"/admin/keys/{listed['id']}").status_code == 200
    wait_for(lambda: not works_on_b(), timeout=1)
    ready = httpx.get(b.url + "/ready").json()
    assert ready["checks"] == {"database": "ok", "redis": "ok", "invalidations": "ok"}


@pytest.mark.pg
def test_a_tool_call_paused_on_one_instance_is_approved_on_the_other(
    make_gateway: Callable[..., Gateway], pg_url: str
) -> None:
    a, b = _pair(make_gateway, pg_url)
    setup_tools(a)
    wait_for(lambda: server_status(b, "weather") == "running", timeout=15)
    _, key = new_user(a)
    paused = chat(a, key, "deleter").json()
    assert paused["status"] == "require_confirmation"
    assert [s["session_id"] for s in sessions(b, key)] == [paused["session_id"]]
    done = confirm(b, key, paused["session_id"], [paused["tool_calls"][0]["id"]])
    assert done.status_code == 200, done.text
    assert text_of(done.json()) == "Tool said: Deleted /srv/important.txt (pretend)"
    assert sessions(a, key) == []  # settled for every instance
    assert confirm(a, key, paused["session_id"], []).status_code == 409
