"""L7's mechanism: beyond ``MAX_IN_FLIGHT`` requests at once, the excess is refused at once."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import httpx

from tests.conftest import Gateway

BODY = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}


def _shed_total(gw: Gateway) -> float:
    text = httpx.get(gw.url + "/metrics").text
    match = re.search(r'gateway_rate_limited_total\{reason="overload"\} (\S+)', text)
    assert match, text
    return float(match.group(1))


async def _burst(gw: Gateway, key: str, n: int) -> list[tuple[httpx.Response, float]]:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30) as client:

        async def one() -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=BODY)
            return response, time.perf_counter() - started

        return await asyncio.gather(*(one() for _ in range(n)))


def test_requests_beyond_the_cap_are_refused_at_once(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(max_in_flight=2)
    gw.add_model("slow", "Mock", base_url="", params={"latency_ms": 800})
    key = gw.create_user()
    before = _shed_total(gw)
    results = asyncio.run(_burst(gw, key, 6))
    served = [r for r, _ in results if r.status_code == 200]
    shed = [(r, t) for r, t in results if r.status_code == 503]
    assert len(served) == 2 and len(shed) == 4
    for response, took in shed:
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "overloaded"
        assert took < 0.5  # refused while the admitted ones still wait for their upstream
    assert _shed_total(gw) - before == 4
    with gw.client(key) as client:  # the cap frees as requests end
        assert client.post("/v1/chat/completions", json=BODY).status_code == 200
        assert client.get("/v1/models").status_code == 200  # reads are never shed
