"""Load shapes for the load rows: open loop at a fixed rate, and closed loop at a concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def fixed_rate(rate: float, seconds: float, fire: Callable[[], Awaitable[T]]) -> list[T]:
    """Start ``fire()`` every ``1/rate`` s for ``seconds`` whatever the answers take (open loop:
    a slow answer does not delay the next request); returns every result."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = round(rate * seconds)
    tasks: list[asyncio.Task[T]] = []
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire()))
    return list(await asyncio.gather(*tasks))


async def closed_loop(
    concurrency: int, seconds: float, fire: Callable[[], Awaitable[T]]
) -> list[T]:
    """``concurrency`` workers, each sending its next request when the last one is answered,
    until ``seconds`` have passed; returns every result."""
    deadline = time.monotonic() + seconds
    results: list[T] = []

    async def worker() -> None:
        while time.monotonic() < deadline:
            results.append(await fire())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def count_limited(total: int, concurrency: int, fire: Callable[[], Awaitable[T]]) -> list[T]:
    """Exactly ``total`` requests, at most ``concurrency`` at once."""
    remaining = iter(range(total))
    results: list[T] = []

    async def worker() -> None:
        for _ in remaining:
            results.append(await fire())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results
