"""Relaying a stream to the client, chunk by chunk, and noticing when the client leaves."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lowart.api.asgi import SSE_HEADERS, Receive, Send
from lowart.watchdog import Watchdog


@dataclass(frozen=True)
class WriteTimeout:
    """How long a client may leave a chunk unsent (a full socket) before its stream is cut:
    the upstream is then closed and what was generated is billed, as for a disconnect."""

    watchdog: Watchdog
    seconds: float


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump(send: Send, events: AsyncIterator[bytes], limit: WriteTimeout) -> None:
    loop = asyncio.get_running_loop()
    with limit.watchdog.guard(math.inf) as watch:  # armed only while a send waits
        async for chunk in events:
            watch.deadline = loop.time() + limit.seconds
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            watch.deadline = math.inf
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_sse(
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
    events: AsyncIterator[bytes],
    limit: WriteTimeout,
) -> None:
    """Send SSE as it comes. A client that disconnects, or stops reading for longer than the
    write timeout, cancels the upstream read at once."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    pump = asyncio.ensure_future(_pump(send, events, limit))
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not pump.done():
            pump.cancel()
        await asyncio.gather(pump, watcher, return_exceptions=True)
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
