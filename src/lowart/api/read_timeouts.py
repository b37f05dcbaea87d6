"""Request read timeouts under the ASGI app: slowloris and slow POST (docs/reliability.md, L5).

uvicorn's httptools protocol has no header timeout: a connection that sends its request line
and headers a byte at a time (or nothing at all) is held forever. This subclass adds one timer
per request read:

- from the connection's start, or a request's first byte, its headers must be complete within
  ``HEADER_TIMEOUT_S``;
- after the headers, the body must be complete within ``BODY_TIMEOUT_S`` plus one second per
  ``BODY_MIN_RATE`` bytes received (so a large body on a slow but honest link gets its time, and
  a body dripped a byte at a time does not).

On expiry the connection gets ``408 Request Timeout`` (when no response has started) and is
closed. Idle keep-alive connections stay uvicorn's ``timeout_keep_alive`` business.

The deadlines are not event-loop timers (about 7 µs each to arm and cancel under uvloop, two
per request): each connection joins one set while it is open and writes its deadline (infinite
between requests), and one task sweeps the set every ``SWEEP_S``. A deadline may fire up to that
much late, against timeouts of seconds.

uvicorn offers no public way to do this, so the subclass builds on ``HttpToolsProtocol``'s
internals (its parser hooks, ``loop``, ``transport``, ``client``, ``cycle``): pyproject.toml pins
uvicorn to the tested minor, and tests/unit/test_dependencies.py checks those internals.
"""

from __future__ import annotations

import asyncio
import math

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger()

BODY_MIN_RATE = 1024  # bytes per second a body must keep up, beyond BODY_TIMEOUT_S
SWEEP_S = 0.25


class _Sweeper:
    """The open connections, and the one task that expires their read deadlines."""

    def __init__(self) -> None:
        self.open: set[_ReadTimeoutProtocol] = set()
        self._task: asyncio.Task[None] | None = None

    def join(self, protocol: _ReadTimeoutProtocol) -> None:
        self.open.add(protocol)
        if self._task is None or self._task.done():
            self._task = protocol.loop.create_task(self._run(protocol.loop))

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            for protocol in [p for p in self.open if p.read_deadline <= now]:
                protocol.expired()


_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 20\r\n"
    b"connection: close\r\n\r\n"
    b"Request Timeout.\r\n\r\n"
)


class _ReadTimeoutProtocol(HttpToolsProtocol):
    """httptools' protocol with a header timeout and a body timeout (class attributes)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    sweeper: _Sweeper  # one per protocol class: per server
    read_deadline = math.inf  # loop time; infinite while no request is being read
    _in_body = False  # the headers are read, the body is not yet whole
    _body_start = 0.0
    _body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.read_deadline = self.loop.time() + self.header_timeout_s
        self.sweeper.join(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sweeper.open.discard(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.read_deadline == math.inf:  # a later request on a kept-alive connection
            self.read_deadline = self.loop.time() + self.header_timeout_s

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._in_body, self._body_start, self._body_bytes = True, self.loop.time(), 0
        self.read_deadline = self._body_start + self.body_timeout_s

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.read_deadline = math.inf
        self._in_body = False
        super().on_message_complete()

    def expired(self) -> None:
        self.read_deadline = math.inf
        if self.transport.is_closing():
            return
        if self._in_body:
            allowed = self.body_timeout_s + self._body_bytes / BODY_MIN_RATE
            left = self._body_start + allowed - self.loop.time()
            if left > 0:  # the body kept up with the minimum rate: wait for the rest
                self.read_deadline = self.loop.time() + left
                return
        # While reading headers, any cycle is the previous request's, whose response is done.
        started = self._in_body and self.cycle.response_started
        log.warning("request_read_timeout", client=self.client, in_body=self._in_body)
        if not started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def read_timeout_protocol(
    header_timeout_s: float, body_timeout_s: float
) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with these timeouts."""
    return type(
        "ReadTimeoutProtocol",
        (_ReadTimeoutProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "sweeper": _Sweeper(),
        },
    )
