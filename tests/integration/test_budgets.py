"""Budgets in money (docs/api.md, "Budgets"): a refusal names the budget and its reset, periods
reset by themselves on an injected clock, the most restrictive budget decides whatever its
scope, and two instances on PostgreSQL and Redis overspend by at most one request's excess."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import secrets
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import MASTER_KEY, Gateway, wait_for
from tests.integration.test_redis_quota import REDIS_URL

COST = Decimal("0.006")  # usage-1000-1000 at 2 and 4 per million tokens
BODY = {"model": "priced", "messages": [{"role": "user", "content": "what does it cost?"}]}


class Clock:
    """The gateway's clock, moved by the test (prices and budget periods read it)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def move_to(self, when: dt.datetime) -> None:
        self.now = when.timestamp()


def _priced(gw: Gateway, base_url: str, upstream: str = "usage-1000-1000") -> None:
    gw.add_model("priced", base_url=base_url, upstream_model=upstream)
    prices = {"effective_from": "2000-01-01T00:00:00Z", "input": "2", "output": "4"}
    assert gw.admin("PUT", "/admin/models/priced/prices", json=prices).status_code == 200


def _spent(gw: Gateway, user_id: str) -> Decimal:
    report = gw.admin("GET", "/admin/usage", params={"user_id": user_id}).json()
    return Decimal(report["data"][0]["cost"])


def test_a_spent_budget_is_refused_until_its_period_ends(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    clock = Clock(dt.datetime(2026, 3, 28, 22, 0, tzinfo=dt.UTC))  # 23:00 in Paris
    gw = make_gateway(clock=clock, budget_tz="Europe/Paris")
    _priced(gw, fake_openai[1])
    key = gw.create_user("daily", budget="0.010", budget_period="day")
    statuses = []
    with gw.client(key) as client:
        for _ in range(4):
            response = client.post("/v1/chat/completions", json=BODY)
            statuses.append(response.status_code)
        usage = client.get("/v1/usage").json()
    assert statuses == [200, 200, 429, 429]  # the second one is the one allowed excess
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota"
    # the day in Paris ends at midnight, 23:00 UTC; the next is 23 hours long (DST)
    assert "user budget of 'daily' (0.010000 USD per day)" in error["message"]
    assert "resets at 2026-03-28T23:00:00Z" in error["message"]
    [budget] = usage["budgets"]
    assert budget["period"] == "2026-03-28"
    assert budget["spent"] == str(2 * COST) + "000"
    assert budget["remaining"] == "0.000000"
    assert budget["resets_at"] == "2026-03-28T23:00:00Z"
    clock.move_to(dt.datetime(2026, 3, 28, 23, 0, 1, tzinfo=dt.UTC))
    with gw.client(key) as client:
        assert client.post("/v1/chat/completions", json=BODY).status_code == 200
        [budget] = client.get("/v1/usage").json()["budgets"]
    assert budget["period"] == "2026-03-29"
    assert budget["resets_at"] == "2026-03-29T22:00:00Z"
    assert _spent(gw, "daily") == 3 * COST


SCOPES = ("user", "key", "team")


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(SCOPES)))))
def test_the_most_restrictive_budget_decides(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    order: tuple[int, ...],
) -> None:
    """Each scope gets a budget for 1, 2, … requests, in every order: whichever scope holds the
    smallest, it decides, and its refusal names it."""
    gw = make_gateway()
    _priced(gw, fake_openai[1])
    amounts = {scope: str(COST * (rank + 1)) for scope, rank in zip(SCOPES, order, strict=True)}
    user_id = "mr-" + secrets.token_hex(3)
    gw.create_user(user_id, budget=amounts["user"])
    team = {"team_id": "t-" + user_id, "budget": amounts["team"]}
    assert gw.admin("POST", "/admin/teams", json=team).status_code == 201
    member = gw.admin("PUT", f"/admin/teams/t-{user_id}/members/{user_id}")
    assert member.json()["members"] == [user_id]
    minted = gw.admin("POST", f"/admin/users/{user_id}/keys", json={"budget": amounts["key"]})
    key = minted.json()["key"]
    tightest = min(SCOPES, key=lambda scope: Decimal(amounts[scope]))
    with gw.client(key) as client:
        statuses = [client.post("/v1/chat/completions", json=BODY).status_code for _ in range(4)]
        refusal = client.post("/v1/chat/completions", json=BODY).json()["error"]["message"]
    # the tightest covers one request exactly, the next one two: one request is served
    assert statuses == [200, 429, 429, 429]
    assert refusal.startswith(f"The {tightest} budget of")


REQUESTS = 200


async def _burst(gateways: list[Gateway], key: str, body: dict[str, Any]) -> list[int]:
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=REQUESTS)
    clients = [
        httpx.AsyncClient(base_url=g.url, headers=headers, limits=limits, timeout=60)
        for g in gateways
    ]
    try:
        content = json.dumps(body).encode()
        posts = [
            clients[i % len(clients)].post("/v1/chat/completions", content=content)
            for i in range(REQUESTS)
        ]
        return [r.status_code for r in await asyncio.gather(*posts)]
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.pg
@pytest.mark.redis
def test_a_monthly_budget_holds_across_two_instances(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str], pg_url: str
) -> None:
    clock = Clock(dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC))
    shared = {"database_url": pg_url, "redis_url": REDIS_URL, "master_key": MASTER_KEY}
    a, b = make_gateway(clock=clock, **shared), make_gateway(clock=clock, **shared)
    _priced(a, fake_openai[1], "usage-10-20000")  # 0.08002 each: 12 fit in $1.00
    user_id = "monthly-" + secrets.token_hex(3)
    key = a.create_user(user_id, budget="1.00", budget_period="month")
    with b.client(key) as client:
        wait_for(lambda: client.get("/v1/models").status_code == 200, timeout=2)
    body = BODY | {"max_tokens": 20000}  # the worst case: 20000 and the prompt at 4 per million
    statuses = asyncio.run(_burst([a, b], key, body))
    a.flush()
    b.flush()
    spent = _spent(a, user_id)
    each = Decimal("0.08002")
    assert spent <= Decimal("1.00") + each  # one request's excess, at most
    assert spent == each * statuses.count(200)
    assert statuses.count(200) >= 12  # every request that fits is served
    assert statuses.count(429) == REQUESTS - statuses.count(200), Counter(statuses)
    clock.move_to(dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC))  # February: a new period
    with a.client(key) as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    with b.client(key) as client:
        [budget] = client.get("/v1/usage").json()["budgets"]
    assert budget["period"] == "2026-02"
    assert budget["spent"] == "0.080020"
