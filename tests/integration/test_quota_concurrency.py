"""Quota under concurrency, on SQLite and on PostgreSQL: reservations keep billing within bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway
from tests.integration.chat_setup import register_fake_models

REQUESTS = 50
ACTUAL = 20  # the fake's "usage-10-10" behaviour (model gpt-fixed)
BODY = json.dumps(
    {"model": "gpt-fixed", "max_tokens": 10, "messages": [{"role": "user", "content": "how much?"}]}
).encode()
RESERVATION = -(-len(BODY) // 3) + 10  # docs/api.md, "Quotas": bytes / 3 + max_tokens


async def _burst(
    gateway: Gateway, key: str, body: bytes = BODY, held: tuple[FakeOpenAI, int] | None = None
) -> list[httpx.Response]:
    """``REQUESTS`` at once. With ``held`` (the fake, and how many requests are refused), the
    fake answers none until that many refusals are back: every admission then happens while the
    admitted requests are still in flight, and none has settled yet."""
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=REQUESTS)
    async with httpx.AsyncClient(
        base_url=gateway.url, headers=headers, limits=limits, timeout=30
    ) as client:
        posts = [
            asyncio.ensure_future(client.post("/v1/chat/completions", content=body))
            for _ in range(REQUESTS)
        ]
        if held is not None:
            fake, refusals = held
            try:
                for finished, post in enumerate(asyncio.as_completed(posts), 1):
                    await post
                    if finished == refusals:
                        break
            finally:
                fake.released.set()
        return await asyncio.gather(*posts)


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


def test_a_capped_reservation_lowers_max_tokens_so_nothing_overspends(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    prompt_estimate = RESERVATION - 10
    quota = 3 * RESERVATION + prompt_estimate + 5  # the fourth reservation is capped
    key = gw.create_user("tight", token_quota=quota)
    gw.add_model("gpt-waits", "OpenAI", base_url=fake_openai[1], upstream_model="usage-10-10:held")
    fake, earlier = fake_openai[0], len(fake_openai[0].calls)
    fake.released.clear()
    body = BODY.replace(b"gpt-fixed", b"gpt-waits")
    responses = asyncio.run(_burst(gw, key, body, held=(fake, REQUESTS - 4)))
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 429]
    assert statuses.count(200) == 4 and len(refused) == REQUESTS - 4
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    sent = sorted(call["body"]["max_tokens"] for call in fake_openai[0].calls[earlier:])
    lowered = 5  # what the capped reservation covers beyond the prompt's estimate
    assert sent == [lowered, 10, 10, 10]
    token_used, recorded = _billed(gw, "tight")
    assert token_used == recorded == 3 * ACTUAL + 10 + lowered <= quota


def test_a_capped_reservation_too_small_for_the_prompt_is_refused(gw: Gateway) -> None:
    quota = RESERVATION + 3  # after one request, 3 tokens remain: less than the prompt
    key = gw.create_user("crumbs", token_quota=quota)
    with gw.client(key) as client:
        first = client.post("/v1/chat/completions", content=BODY)
        gw.flush()
        second = client.post("/v1/chat/completions", content=BODY)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "insufficient_quota"


def test_every_choice_is_reserved_and_billed(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """``n`` choices reserve ``n * max_tokens``; a capped reservation lowers ``max_tokens`` so
    that all of them fit, and the vendor's count is billed (docs/api.md, "Quotas")."""
    quota, choices = 1_000, 128
    key = gw.create_user("choices", token_quota=quota)
    fake, earlier = fake_openai[0], len(fake_openai[0].calls)
    client = gw.openai(key)
    served, refused = [], []
    for _ in range(10):
        try:
            served.append(
                client.chat.completions.create(
                    model="gpt-ok",
                    messages=[{"role": "user", "content": "hi"}],
                    n=choices,
                    max_tokens=7,
                )
            )
        except openai.RateLimitError as exc:
            refused.append(exc)
    assert len(served) == 2 and len(refused) == 8
    assert all(exc.code == "insufficient_quota" for exc in refused)
    assert all(len(completion.choices) == choices for completion in served)
    sent = [call["body"]["max_tokens"] for call in fake.calls[earlier:]]
    assert sent[0] == 7 and 1 <= sent[1] < 7  # the second one, lowered to fit
    first, second = (c.usage for c in served)
    assert first is not None and second is not None
    billed_second = second.prompt_tokens + min(second.completion_tokens, choices * sent[1])
    token_used, recorded = _billed(gw, "choices")
    assert token_used == recorded == first.total_tokens + billed_second <= quota
