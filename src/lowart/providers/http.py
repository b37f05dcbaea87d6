"""The one pooled aiohttp session, with per-call timeouts and upstream error mapping."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Mapping
from types import TracebackType

import aiohttp

from lowart.entries import ModelEntry, Timeouts
from lowart.errors import UpstreamError, UpstreamTimeout
from lowart.providers.statuses import ReadFailure, check_status
from lowart.security.connect_guard import GuardedConnector
from lowart.security.ssrf import DestinationPolicy
from lowart.watchdog import Watchdog

_READ_SIZE = 64 * 1024


class UpstreamErrors:
    """``with UpstreamErrors(model_id):`` turns transport failures into the gateway's 502
    and 504 errors. A plain class: a generator-based context manager costs microseconds more,
    and this one is entered on every upstream read."""

    __slots__ = ("_model_id",)

    def __init__(self, model_id: str) -> None:
        self._model_id = model_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"The upstream for '{self._model_id}' timed out.") from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            name = type(exc).__name__
            raise UpstreamError(f"The upstream for '{self._model_id}' failed: {name}.") from exc


class UpstreamResponse:
    """An upstream HTTP response whose body is read whole or chunk by chunk."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        model_id: str,
        idle_s: float,
        deadline: float,
        watchdog: Watchdog,
    ) -> None:
        self._response = response
        self._model_id = model_id
        self._idle = idle_s
        self._deadline = deadline  # loop time by which the whole attempt must end
        self._watchdog = watchdog
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        with UpstreamErrors(self._model_id), self._watchdog.guard(self._deadline):
            return await self._response.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; the idle timeout applies while waiting for each (not
        while the consumer handles one)."""
        content = self._response.content
        loop = asyncio.get_running_loop()
        idle, deadline = self._idle, self._deadline
        with UpstreamErrors(self._model_id), self._watchdog.guard(deadline) as watch:
            while True:
                watch.deadline = min(loop.time() + idle, deadline)
                chunk = await content.readany()
                watch.deadline = math.inf
                if not chunk:
                    return
                yield chunk

    async def check(self, read: ReadFailure) -> None:
        """Raise the gateway's error for an error status (its body read whole)."""
        if self.status >= 400:
            check_status(self._model_id, self.status, self.headers, await self.read(), read)

    def close(self) -> None:
        """Drop the connection (used when the client went away mid-stream)."""
        self._response.close()

    def release(self) -> None:
        """Give a fully read connection back to the pool."""
        self._response.release()


class Transport:
    """Posts JSON to vendors over one shared, pooled session."""

    def __init__(self, session: aiohttp.ClientSession, watchdog: Watchdog) -> None:
        self._session = session
        self._watchdog = watchdog
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}  # by connect timeout

    def _send(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Awaitable[aiohttp.ClientResponse]:
        """The POST, to await for the response head (the deadlines are the caller's guard)."""
        timeout = self._timeouts.get(timeouts.connect)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)
            self._timeouts[timeouts.connect] = timeout
        return self._session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, model: ModelEntry
    ) -> UpstreamResponse:
        """Send the request and wait for the response head (within the first-byte timeout)."""
        timeouts = model.timeouts
        now = asyncio.get_running_loop().time()
        deadline = now + timeouts.total
        with (
            UpstreamErrors(model.model_id),
            self._watchdog.guard(min(deadline, now + timeouts.first_byte)),
        ):
            response = await self._send(url, headers, body, timeouts)
        return UpstreamResponse(response, model.model_id, timeouts.idle, deadline, self._watchdog)

    async def fetch(
        self, url: str, headers: dict[str, str], body: bytes, model: ModelEntry
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send the request and read the whole answer: its status, headers and body. The head
        must come within the first-byte timeout and the body within the total: one guarded
        block for both (a whole answer is the hot path)."""
        timeouts = model.timeouts
        now = asyncio.get_running_loop().time()
        deadline = now + timeouts.total
        with (
            UpstreamErrors(model.model_id),
            self._watchdog.guard(min(deadline, now + timeouts.first_byte)) as watch,
        ):
            response = await self._send(url, headers, body, timeouts)
            watch.deadline = deadline
            return response.status, response.headers, await response.read()


def new_session(
    destinations: DestinationPolicy | None = None, pool_size: int = 1024
) -> aiohttp.ClientSession:
    """The process's upstream session: a large keep-alive pool, no cookies, no env proxies, and
    connections only to the destinations the SSRF policy allows (checked at connect time)."""
    connector = GuardedConnector(
        destinations or DestinationPolicy(),
        limit=pool_size,
        limit_per_host=pool_size,
        ttl_dns_cache=60,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=True,
    )
