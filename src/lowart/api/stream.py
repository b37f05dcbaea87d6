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


class _Departure:
    """Watches for the client's disconnect while the relaying task pumps, and cancels that task
    if the client leaves mid-stream.

    The watching is one helper task per stream, started at the watchdog's next tick: a stream
    that ends within a tick (a short answer relayed at once) never needs one, and a longer one
    notices a disconnect at most a tick later.
    """

    __slots__ = ("left", "pumping", "receive", "task", "watcher")

    def __init__(self, task: asyncio.Task[object], receive: Receive) -> None:
        self.task = task
        self.receive = receive
        self.pumping = True
        self.left = False
        self.watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.pumping:
            self.watcher = self.task.get_loop().create_task(self._watch())

    def stop(self) -> None:
        self.pumping = False
        if self.watcher is not None:
            self.watcher.cancel()

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if self.pumping:  # the relaying task is suspended in the pump: the cancel lands there
            self.left = True
            self.task.cancel()


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
    write timeout, ends the upstream read at once (the events' ``finally`` bills what was sent)."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("relay_sse needs a running task")
    departure = _Departure(task, receive)
    limit.watchdog.defer(departure)
    try:
        await _pump(send, events, limit)
    except asyncio.CancelledError:
        # Ours only if the client left and nobody else also cancelled this task (shutdown).
        if not departure.left or task.uncancel() > 0:
            raise
    except TimeoutError:
        pass  # the write timeout: the client stopped reading, the stream is cut
    finally:
        limit.watchdog.withdraw(departure)
        departure.stop()
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
