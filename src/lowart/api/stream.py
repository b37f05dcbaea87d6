"""Relaying a stream to the client, chunk by chunk, and noticing when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lowart.api.asgi import SSE_HEADERS, Receive, Send


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump(send: Send, events: AsyncIterator[bytes]) -> None:
    async for chunk in events:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_sse(
    receive: Receive, send: Send, headers: list[tuple[bytes, bytes]], events: AsyncIterator[bytes]
) -> None:
    """Send SSE as it comes. A client that disconnects cancels the upstream read at once."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    pump = asyncio.ensure_future(_pump(send, events))
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
