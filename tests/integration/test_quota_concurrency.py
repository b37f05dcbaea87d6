"""Quota under concurrency, on SQLite and on PostgreSQL: reservations keep billing within bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway
from tests.integration.chat_setup import register_fake_models

REQUESTS = 50
ACTUAL = 20  # the fake's "usage-10-10" behaviour (model gpt-fixed)
BODY = json.dumps(
    {"model": "gpt-fixed", "max_tokens": 10, "messages": [{"role": "user", "content": "how much?"}]}
).encode()
RESERVATION = -(-len(BODY) // 3) + 10  # api.md: prompt bytes / 3, plus max_tokens


async def _burst(gateway: Gateway, key: str) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=REQUESTS)
    async with httpx.AsyncClient(
        base_url=gateway.url, headers=headers, limits=limits, timeout=30
    ) as client:
        return await asyncio.gather(
            *(client.post("/v1/chat/completions", content=BODY) for _ in range(REQUESTS))
        )


def _billed(gateway: Gateway, user_id: str) -> tuple[int, int]:
    gateway.flush()
    users = gateway.admin("GET", f"/admin/users/{user_id}").json()
    usage = gateway.admin("GET", f"/admin/usage?user_id={user_id}").json()["data"][0]
    return users["token_used"], usage["total_tokens"]


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def gw(
    request: pytest.FixtureRequest,
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
) -> Gateway:
    overrides = {}
    if request.param == "pg":
        overrides["database_url"] = request.getfixturevalue("pg_url")
    gateway = make_gateway(**overrides)
    register_fake_models(gateway, fake_openai[1])
    return gateway


def test_reservations_that_fit_never_overspend(gw: Gateway) -> None:
    quota = REQUESTS * RESERVATION
    key = gw.create_user("fits", token_quota=quota)
    responses = asyncio.run(_burst(gw, key))
    assert [r.status_code for r in responses] == [200] * REQUESTS
    token_used, recorded = _billed(gw, "fits")
    assert token_used == recorded == REQUESTS * ACTUAL <= quota


def test_reservations_that_do_not_fit_overspend_by_one_request_at_most(gw: Gateway) -> None:
    quota = 3 * RESERVATION + RESERVATION // 2  # the fourth reservation is capped
    key = gw.create_user("tight", token_quota=quota)
    responses = asyncio.run(_burst(gw, key))
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 429]
    assert statuses.count(200) >= 3 and refused
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    token_used, recorded = _billed(gw, "tight")
    assert token_used == recorded == statuses.count(200) * ACTUAL
    assert token_used <= quota + ACTUAL
