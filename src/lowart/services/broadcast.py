"""Admin changes told to every instance over Redis pub/sub, and the other instances' acted on
(docs/deployment.md, "Scaled out")."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from lowart.catalog.invalidations import CHANNEL, InvalidationListener, Reload

log = structlog.get_logger()

REFRESH = "refresh"  # users, keys or models changed
TOOLS_CHANGED = "tools"  # MCP servers registered or deleted


class Broadcast:
    """Publishes this instance's changes and listens for the others' (without Redis: neither)."""

    def __init__(self, redis: aioredis.Redis | None, listener: InvalidationListener | None) -> None:
        self.redis = redis  # shared with the limits, which close it
        self.listener = listener  # its own connection, closed here

    async def publish(self, message: str) -> None:
        """Tell the other instances; one that misses it catches up on its refresh timer."""
        if self.redis is None:
            return
        try:
            await self.redis.publish(CHANNEL, message)
        except (RedisError, OSError, TimeoutError):  # the others refresh on their timer
            log.warning("invalidation_publish_failed", message=message)

    async def listen(self, refresh: Reload, tools_changed: Callable[[], None]) -> None:
        """Until cancelled: reload on another instance's change of users, keys or models, and
        call ``tools_changed`` (which must not wait) on a change of tool servers."""
        assert self.listener is not None

        async def received(data: bytes) -> None:
            if data == TOOLS_CHANGED.encode():  # may take seconds: not in the listener's way
                tools_changed()
            else:
                await refresh()

        await self.listener.run(refresh, received)

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.close()
