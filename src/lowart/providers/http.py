"""The one pooled aiohttp session, with per-call timeouts and upstream error mapping."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Mapping
from types import TracebackType

import aiohttp

from lowart.errors import UpstreamAnswerBroken, UpstreamError, UpstreamTimeout
from lowart.model_entry import ModelEntry, Timeouts
from lowart.providers.statuses import ReadFailure, check_status
from lowart.providers.transport_failure import describe, status_of
from lowart.security.connect_guard import GuardedConnector
from lowart.security.ssrf import DestinationPolicy
from lowart.telemetry.tracing import Tracing
from lowart.watchdog import Watchdog

DEFAULT_MAX_BODY = 32 * 2**20  # UPSTREAM_MAX_BODY_BYTES
CONTENT_ENCODING = "Content-Encoding"


class UpstreamErrors:
    """``with UpstreamErrors(model_id, url):`` turns transport failures into the gateway's 502
    and 504 errors, their reason in words. Once ``answered`` (the head of a 2xx arrived), any
    failure is an ``UpstreamAnswerBroken``: the vendor may have done the work, so it is not
    asked again. A plain class: a generator-based context manager costs microseconds more, and
    this one is entered on every upstream read."""

    __slots__ = ("_model_id", "_url", "answered")

    def __init__(self, model_id: str, url: str) -> None:
        self._model_id = model_id
        self._url = url  # its host is worked out only when something fails
        self.answered = False

    def __enter__(self) -> UpstreamErrors:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        model_id = self._model_id
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            if self.answered:
                raise UpstreamAnswerBroken(
                    f"The answer of the upstream for '{model_id}' stalled after it began; "
                    "it is not requested again."
                ) from exc
            raise UpstreamTimeout(f"The upstream for '{model_id}' timed out.") from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            words = describe(exc, self._url)
            if self.answered:
                raise UpstreamAnswerBroken(
                    f"The answer of the upstream for '{model_id}' broke off after it began "
                    f"({words}); it is not requested again."
                ) from exc
            error = UpstreamError(f"The upstream for '{model_id}' failed: {words}.")
            error.upstream_status = status_of(exc)
            raise error from exc


async def read_capped(response: aiohttp.ClientResponse, max_bytes: int, model_id: str) -> bytes:
    """A whole body, refused once it passes ``max_bytes``: by its ``Content-Length`` before
    reading, and by counting while reading when it has none or is compressed (the length is
    then not the size in memory). An answer too large for a 2xx is an UpstreamAnswerBroken."""
    length = response.content_length
    if length is not None and length <= max_bytes and not response.headers.get(CONTENT_ENCODING):
        return await response.read()  # the common case: the parser stops at the length
    parts: list[bytes] = []
    size = 0 if length is None or length <= max_bytes else length
    while size <= max_bytes:
        chunk = await response.content.readany()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        parts.append(chunk)
    response.close()  # the rest is not wanted: drop the connection rather than drain it
    kind = UpstreamAnswerBroken if 200 <= response.status < 300 else UpstreamError
    error = kind(
        f"The upstream for '{model_id}' sent an answer larger than {max_bytes} bytes "
        "(UPSTREAM_MAX_BODY_BYTES; EMBEDDINGS_MAX_ANSWER_BYTES for embeddings)."
    )
    error.upstream_status = response.status
    raise error


class UpstreamResponse:
    """An upstream HTTP response whose body is read whole or chunk by chunk."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        model_id: str,
        url: str,
        timing: tuple[float, float],
        transport: Transport,
    ) -> None:
        self._response = response
        self._model_id = model_id
        self._url = url
        self._idle, self._deadline = timing  # the deadline: loop time by which the attempt ends
        self._transport = transport
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        """The whole body, within the attempt's deadline and the transport's size cap."""
        with (
            UpstreamErrors(self._model_id, self._url),
            self._transport.watchdog.guard(self._deadline),
        ):
            return await read_capped(self._response, self._transport.max_body, self._model_id)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; the idle timeout applies while waiting for each (not
        while the consumer handles one). A stream is relayed, never held whole: no size cap."""
        content = self._response.content
        loop = asyncio.get_running_loop()
        idle, deadline = self._idle, self._deadline
        guard = self._transport.watchdog.guard(deadline)
        with UpstreamErrors(self._model_id, self._url), guard as watch:
            while True:
                watch.deadline = min(loop.time() + idle, deadline)
                chunk = await content.readany()
                watch.deadline = math.inf
                if not chunk:
                    return
                yield chunk

    async def check(self, read: ReadFailure) -> None:
        """Raise the gateway's error for an error or redirect status (its body read whole)."""
        if self.status >= 300:
            check_status(self._model_id, self.status, self.headers, await self.read(), read)

    def close(self) -> None:
        """Drop the connection (used when the client went away mid-stream)."""
        self._response.close()

    def release(self) -> None:
        """Give a fully read connection back to the pool."""
        self._response.release()


class Transport:
    """Posts JSON to vendors over one shared, pooled session; whole answers are read up to
    ``max_body`` bytes (``UPSTREAM_MAX_BODY_BYTES``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        watchdog: Watchdog,
        max_body: int = DEFAULT_MAX_BODY,
        tracing: Tracing | None = None,
    ) -> None:
        self._session = session
        self.watchdog = watchdog
        self.max_body = max_body
        self._tracing = tracing  # on: each request carries the current attempt's traceparent
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}  # by connect timeout

    def _send(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Awaitable[aiohttp.ClientResponse]:
        """The POST, to await for the response head (the deadlines are the caller's guard)."""
        timeout = self._timeouts.get(timeouts.connect)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)
            self._timeouts[timeouts.connect] = timeout
        if self._tracing is not None:
            headers = {**headers}
            self._tracing.inject(headers)
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
            UpstreamErrors(model.model_id, url),
            self.watchdog.guard(min(deadline, now + timeouts.first_byte)),
        ):
            response = await self._send(url, headers, body, timeouts)
        timing = (timeouts.idle, deadline)
        return UpstreamResponse(response, model.model_id, url, timing, self)

    async def fetch(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        model: ModelEntry,
        max_bytes: int | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send the request and read the whole answer: its status, headers and body (at most
        ``max_bytes``, the transport's cap by default). The head must come within the
        first-byte timeout and the body within the total: one guarded block for both (a whole
        answer is the hot path). Once a 2xx head is in, a failure is never retried."""
        timeouts = model.timeouts
        now = asyncio.get_running_loop().time()
        deadline = now + timeouts.total
        errors = UpstreamErrors(model.model_id, url)
        with errors, self.watchdog.guard(min(deadline, now + timeouts.first_byte)) as watch:
            response = await self._send(url, headers, body, timeouts)
            watch.deadline = deadline
            status = response.status
            errors.answered = 200 <= status < 300
            cap = self.max_body if max_bytes is None else max_bytes
            return status, response.headers, await read_capped(response, cap, model.model_id)


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
