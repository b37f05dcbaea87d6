"""Tokens per minute and keys with their own limits (docs/api.md, "Rate limits", "Keys and their
limits"): TPM counted on the reservation, a request that can never fit, expired keys."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from lowart.limits.redis_tpm import RedisTokenLimiter
from lowart.limits.tpm import MemoryTokenLimiter, TokenLimiter
from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway
from tests.integration.test_budgets import Clock
from tests.integration.test_redis_quota import resp

CONCURRENT = 100
TPM = 1_000
BODY = {"model": "tpm-held", "messages": [{"role": "user", "content": "count me"}]}
PROMPT_BOUND = -(-len(json.dumps(BODY).encode()) // 3)  # docs/api.md, "Quotas": bytes / 3
REQUEST_TOKENS = 50


def _body() -> bytes:
    """A request whose reservation is exactly ``REQUEST_TOKENS``."""
    body = BODY | {"max_tokens": 0}
    for _ in range(3):  # the digits of max_tokens change the size: settle on a fixed point
        body["max_tokens"] = REQUEST_TOKENS - -(-len(json.dumps(body).encode()) // 3)
    encoded = json.dumps(body).encode()
    assert -(-len(encoded) // 3) + body["max_tokens"] == REQUEST_TOKENS
    return encoded


@pytest.fixture
def held(fake_openai: tuple[FakeOpenAI, str]) -> Iterator[FakeOpenAI]:
    fake = fake_openai[0]
    fake.released.clear()
    yield fake
    fake.released.set()


async def _burst(gw: Gateway, key: str, body: bytes, fake: FakeOpenAI, refusals: int) -> list[int]:
    """Every request at once; the fake answers none until ``refusals`` are back, so each
    admission happens while every admitted request is still in flight."""
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(
        base_url=gw.url, headers=headers, limits=limits, timeout=30
    ) as client:
        posts = [
            asyncio.ensure_future(client.post("/v1/chat/completions", content=body))
            for _ in range(CONCURRENT)
        ]
        try:
            for finished, post in enumerate(asyncio.as_completed(posts), 1):
                await post
                if finished == refusals:
                    break
        finally:
            fake.released.set()
        return [r.status_code for r in await asyncio.gather(*posts)]


def test_tpm_admits_at_most_the_limit_per_window(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str], held: FakeOpenAI
) -> None:
    gw = make_gateway()
    gw.add_model("tpm-held", base_url=fake_openai[1], upstream_model="usage-5-5:held")
    key = gw.create_user("tpm-user", tpm_limit=TPM)
    fits = TPM // REQUEST_TOKENS
    statuses = asyncio.run(_burst(gw, key, _body(), held, CONCURRENT - fits))
    assert statuses.count(200) == fits
    assert statuses.count(429) == CONCURRENT - fits
    with gw.client(key) as client:
        answer = client.post("/v1/chat/completions", content=_body())
    # the 20 served used 10 tokens each, not 50: the window holds 200, and room for 800 more
    assert answer.status_code == 200
    assert answer.headers["x-ratelimit-limit-tokens"] == str(TPM)
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(TPM - fits * 10 - 50)
    assert answer.headers["x-ratelimit-reset-tokens"].endswith("s")


def test_a_request_beyond_the_tpm_limit_can_never_fit(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway()
    gw.add_model("tpm-held", base_url=fake_openai[1], upstream_model="usage-5-5")
    user_key = gw.create_user("tpm-small", tpm_limit=TPM)
    key = gw.admin("POST", "/admin/users/tpm-small/keys", json={"tpm_limit": 40}).json()["key"]
    with gw.client(key) as client:
        refused = client.post("/v1/chat/completions", content=_body())
    with gw.client(user_key) as client:
        served = client.post("/v1/chat/completions", content=_body())
    assert served.status_code == 200
    assert refused.status_code == 429
    assert refused.headers["x-should-retry"] == "false"
    assert "can never fit" in refused.json()["error"]["message"]


def test_a_key_past_its_expiry_gets_401(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    clock = Clock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))
    gw = make_gateway(clock=clock)
    gw.create_user("expiring")
    minted = gw.admin(
        "POST", "/admin/users/expiring/keys", json={"expires_at": "2026-06-01T13:00:00Z"}
    )
    assert minted.json()["expires_at"] == "2026-06-01T13:00:00Z"
    with gw.client(minted.json()["key"]) as client:
        assert client.get("/v1/models").status_code == 200
        clock.move_to(dt.datetime(2026, 6, 1, 13, 0, tzinfo=dt.UTC))
        expired = client.get("/v1/models")
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "This API key expired at 2026-06-01T13:00:00Z."


def test_a_key_has_its_own_models_and_rpm_within_its_users(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway()
    for model in ("one", "two", "three"):
        gw.add_model(model, base_url=fake_openai[1], upstream_model="ok")
    gw.create_user("narrow", models=["one", "two"], rpm_limit=10)
    key = gw.admin(
        "POST", "/admin/users/narrow/keys", json={"models": ["two", "three"], "rpm_limit": 2}
    ).json()["key"]
    message = [{"role": "user", "content": "hi"}]
    with gw.client(key) as client:
        listed = {m["id"] for m in client.get("/v1/models").json()["data"]}
        codes = [
            client.post(
                "/v1/chat/completions", json={"model": model, "messages": message}
            ).status_code
            for model in ("two", "two", "two", "three", "one")
        ]
    assert listed == {"two"}  # the key's list within the user's
    assert codes == [200, 200, 429, 404, 404]


@pytest.mark.redis
@pytest.mark.parametrize("shared", [True, False])
async def test_concurrent_tpm_admissions_never_exceed_the_limit(shared: bool) -> None:
    """100 admissions of 50 tokens at once against 1,000 per window, through Redis (two
    limiters standing for two instances) or in memory: exactly 20 fit; a correction frees the
    difference at once, and the window's entries leave it after the window."""
    async with resp() as client:
        prefix = f"lowart:test:{secrets.token_hex(6)}:"
        limiters: list[TokenLimiter] = (
            [RedisTokenLimiter(client, 60.0, prefix=prefix) for _ in range(2)]
            if shared
            else [MemoryTokenLimiter(60.0)]
        )
        decisions = await asyncio.gather(
            *(limiters[i % len(limiters)].admit("u", TPM, 50) for i in range(CONCURRENT))
        )
        admitted = [d for d in decisions if d.allowed]
        assert len(admitted) == TPM // 50
        refused = next(d for d in decisions if not d.allowed)
        assert refused.remaining == 0 and 0 < refused.reset_s <= 60
        await limiters[0].correct(admitted[0], 10)  # 40 tokens back
        assert not (await limiters[-1].admit("u", TPM, 41)).allowed
        later = await limiters[-1].admit("u", TPM, 40)
        assert later.allowed and later.remaining == 0


def test_a_user_mints_lists_and_revokes_keys_within_their_rights(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway()
    for model in ("one", "two"):
        gw.add_model(model, base_url=fake_openai[1], upstream_model="ok")
    key = gw.create_user("minter", models=["one", "two"], rpm_limit=5)
    other = gw.create_user("bystander")
    with gw.client(key) as client:
        beyond = client.post("/v1/keys", json={"rpm_limit": 6})
        minted = client.post("/v1/keys", json={"name": "ci", "models": ["two"], "budget": "1"})
        listed = client.get("/v1/keys").json()["data"]
    assert beyond.status_code == 400 and beyond.json()["error"]["param"] == "rpm_limit"
    assert minted.status_code == 201, minted.text
    body = minted.json()
    assert (body["models"], body["rpm_limit"], body["budget"]) == (["two"], 5, "1.000000")
    assert {k["id"] for k in listed} >= {body["id"]} and "key" not in listed[0]
    message = [{"role": "user", "content": "hi"}]
    with gw.client(body["key"]) as client:
        codes = [
            client.post("/v1/chat/completions", json={"model": m, "messages": message}).status_code
            for m in ("two", "one")
        ]
        wider = client.post("/v1/keys", json={"models": ["one"]})
    assert codes == [200, 404]
    assert wider.status_code == 400 and wider.json()["error"]["param"] == "models"
    with gw.client(other) as client:
        assert client.delete(f"/v1/keys/{body['id']}").status_code == 404  # not theirs
    with gw.client(key) as client:
        assert client.delete(f"/v1/keys/{body['id']}").status_code == 200
    with gw.client(body["key"]) as client:
        assert client.get("/v1/models").status_code == 401
