"""Invalidations over Redis pub/sub: an instance reloads its directory when another one changed
users, keys, models or tool servers (docs/deployment.md, "Scaled out").

The listener has a connection of its own, without the hot path's short timeout
(``REDIS_TIMEOUT_MS``): a ``SUBSCRIBE`` answered late on a busy start is still a subscription,
where a listener that gave up and waited would miss what the others publish meanwhile. A lost or
refused subscription is tried again at once, then after a backoff that doubles from ``step_s`` up
to ``cap_s``. After every confirmed (re)subscribe the directory is reloaded, so nothing published
while the listener was deaf is missed. Until the first subscription holds, ``check`` fails, and
``/ready`` with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog

from lowart.settings import Settings

log = structlog.get_logger()

CHANNEL = "lowart:invalidate"

Reload = Callable[[], Awaitable[None]]
OnMessage = Callable[[bytes], Awaitable[None]]


def resubscribe_delay(failures: int, step_s: float, cap_s: float) -> float:
    """How long to wait after ``failures`` failures in a row: the first retry at once, then
    ``step_s``, doubling, never more than ``cap_s``."""
    if failures <= 1:
        return 0.0
    return float(min(cap_s, step_s * 2.0 ** (failures - 2)))


def listener_client(url: str) -> aioredis.Redis:
    """A client for the listener alone: no read or connect timeout (a subscription waits for
    messages), and TCP keepalive, so that a peer that vanished is noticed."""
    return aioredis.Redis.from_url(
        url, socket_timeout=None, socket_connect_timeout=None, socket_keepalive=True
    )


class NotSubscribed(Exception):
    """The listener has not subscribed yet (the readiness probe's failure)."""


class InvalidationListener:
    """Subscribes to ``channel`` for as long as it runs, reloading after each subscribe."""

    def __init__(
        self, client: aioredis.Redis, *, step_s: float, cap_s: float, channel: str = CHANNEL
    ) -> None:
        self._client = client
        self._step_s = step_s
        self._cap_s = cap_s
        self._channel = channel
        self._failures = 0
        self.subscribed = asyncio.Event()  # set once the first subscription held

    @classmethod
    def for_settings(cls, settings: Settings) -> InvalidationListener | None:
        """With ``REDIS_URL``: a listener that retries at once, then from ``REDIS_TIMEOUT_MS``
        doubling up to ``CACHE_REFRESH_S`` (past that, the refresh timer reloads anyway)."""
        if settings.redis.url is None:
            return None
        return cls(
            listener_client(settings.redis.url),
            step_s=settings.redis.timeout_ms / 1000,
            cap_s=settings.database.cache_refresh_s,
        )

    async def check(self) -> None:
        """The readiness probe: fails until the first subscription held."""
        if not self.subscribed.is_set():
            raise NotSubscribed("not yet subscribed to invalidations")

    async def run(self, reload: Reload, on_message: OnMessage) -> None:
        """Listen until cancelled, subscribing again whenever the subscription is lost."""
        while True:
            try:
                await self._listen(reload, on_message)
            except Exception as exc:  # Redis, the network, or a reload: subscribe again
                log.warning(
                    "invalidation_listener_resubscribing",
                    error=type(exc).__name__,
                    failures=self._failures + 1,
                    exc_info=True,
                )
            self._failures += 1
            await asyncio.sleep(resubscribe_delay(self._failures, self._step_s, self._cap_s))

    async def _listen(self, reload: Reload, on_message: OnMessage) -> None:
        async with self._client.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            confirmed = await pubsub.get_message(timeout=None)  # the server's "subscribe"
            if confirmed is None or confirmed.get("type") != "subscribe":
                raise ConnectionError(f"unexpected answer to SUBSCRIBE: {confirmed!r}")
            await reload()  # what was published before this subscription held
            self._failures = 0
            self.subscribed.set()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await on_message(message["data"])

    async def close(self) -> None:
        await self._client.aclose()
