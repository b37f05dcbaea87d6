"""A bare pass-through proxy: the floor any Python design of the gateway pays.

A raw ASGI app on uvicorn (uvloop + httptools) with one pooled aiohttp session. It forwards
``POST /v1/chat/completions`` to ``$UPSTREAM/chat/completions``, relays a JSON body whole and an
SSE body chunk by chunk. No auth, limits, billing or metrics. Run::

    UPSTREAM=http://127.0.0.1:9999/json/v1 PORT=8100 .venv/bin/python bench/passthrough.py
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _reply(send: Send, status: int, body: bytes, ctype: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Passthrough:
    """The ASGI app; the session is opened and closed by the lifespan."""

    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await _reply(send, 404, b'{"error":"not found"}', b"application/json")
        else:
            await self._relay(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
                self.session = aiohttp.ClientSession(connector=connector)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _relay(self, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        assert self.session is not None
        headers = {"Content-Type": "application/json"}
        try:
            async with self.session.post(self.url, data=body, headers=headers) as upstream:
                ctype = upstream.headers.get("Content-Type", "application/json").encode()
                if not ctype.startswith(b"text/event-stream"):
                    await _reply(send, upstream.status, await upstream.read(), ctype)
                    return
                start = [(b"content-type", ctype), (b"cache-control", b"no-cache")]
                await send(
                    {"type": "http.response.start", "status": upstream.status, "headers": start}
                )
                async for chunk in upstream.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except aiohttp.ClientError:
            await _reply(send, 502, b'{"error":"upstream failed"}', b"application/json")


app = Passthrough(os.environ.get("UPSTREAM", "http://127.0.0.1:9999/json/v1"))

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8100")),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
