"""Raw-ASGI pieces shared by the fake upstreams: a base app, request bodies, JSON responses."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from starlette.types import Message, Receive, Scope, Send

Headers = Sequence[tuple[bytes, bytes]]


def option_number(text: str | None) -> int | None:
    """An int written in a model name's option, where a leading ``m`` stands for minus."""
    digits = (text or "").removeprefix("m")
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return -int(digits) if (text or "").startswith("m") else int(digits)


def _request_headers(scope: Scope) -> dict[str, str]:
    """The request headers by lowercased name, repeated ones joined with a comma."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many messages it arrives in."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(parts)


async def send_json(
    send: Send, status: int, body: bytes, extra: Headers = (), cut: bool = False
) -> None:
    """A JSON response; a cut one sends only half of the announced body."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    half = body[: len(body) // 2]
    await send({"type": "http.response.body", "body": half if cut else body, "more_body": cut})


def _with_request_id(send: Send, header: bytes, request_id: bytes) -> Send:
    """Wrap ``send`` so the response start carries the request id under the given header name."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (header, request_id)]
            message = {**message, "headers": headers}
        await send(message)

    return send_with_id


class FakeUpstream:
    """A fake upstream's ASGI entry: lifespan, request counting and the request-id header."""

    request_id_header: ClassVar[bytes]

    def __init__(self) -> None:
        self.disconnects = 0
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.requests += 1
        send = _with_request_id(send, self.request_id_header, b"req_fake_%d" % self.requests)
        await self._http(scope, receive, send, _request_headers(scope))

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        """Answer one HTTP request, given its headers; ``send`` already adds the request id."""
        raise NotImplementedError

    async def _stream(
        self, receive: Receive, send: Send, events: list[bytes], delay: float, complete: bool
    ) -> None:
        """Stream SSE events, ending only if ``complete``; count a client that leaves early."""
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pump = asyncio.create_task(_pump(send, events, delay, complete))
        gone = asyncio.create_task(_disconnected(receive))
        try:
            done, _ = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the server cancels this request on shutdown
            for task in (pump, gone):
                task.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        if pump in done:
            pump.result()
        else:
            self.disconnects += 1


async def _pump(send: Send, events: list[bytes], delay: float, complete: bool) -> None:
    """Send the events as body parts, ``delay`` seconds apart, then end the body if ``complete``."""
    for index, event in enumerate(events):
        if index and delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": event, "more_body": True})
    if complete:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge start-up, then shut-down; the fakes hold no resources."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
