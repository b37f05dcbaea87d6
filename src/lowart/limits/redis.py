"""RPM windows shared through Redis: one atomic Lua script on the server's own clock.

Every process and instance that shares a Redis counts against the same window, so a user's
limit holds across them. The script reads ``TIME`` on the Redis server, so the processes' clocks
do not matter. When Redis cannot answer in time, the limiter fails closed (503) by default, or,
with ``degraded`` mode, falls back to an in-process window: never to no limit at all.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from lowart.errors import ServiceUnavailable
from lowart.limits.base import RpmDecision
from lowart.limits.memory import MemoryRateLimiter
from lowart.limits.resp import RespClient, Script

log = structlog.get_logger()

# KEYS[1]: the user's window (a sorted set of admission times, in ms). ARGV: limit, window (ms),
# a unique member. Returns {admitted, count, ms until the oldest entry leaves the window}.
SLIDING_WINDOW = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  admitted = 1
end
local reset = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {admitted, count, reset}
""")


# KEYS[1]: a key's token counter; ARGV: window (ms), tokens to add (0: read). Fixed windows on
# the server's clock, so every instance counts into the same one. Returns the window's tokens.
TOKEN_WINDOW = Script("""
local t = redis.call('TIME')
local window = tonumber(ARGV[1])
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1] .. ':' .. math.floor(now / window)
local spent = redis.call('INCRBY', key, ARGV[2])
redis.call('PEXPIRE', key, window)
return spent
""")


def connect(url: str, timeout_s: float, max_connections: int = 64) -> aioredis.Redis:
    """A client whose pool waits (up to ``timeout_s``) for a free connection when all are busy,
    rather than failing at once: a burst of requests queues for Redis instead of erroring."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


class RedisRateLimiter:
    """A sliding window per user, kept in Redis and checked atomically."""

    def __init__(
        self,
        client: RespClient,
        window_s: float,
        *,
        prefix: str = "lowart:rpm:",
        fallback: MemoryRateLimiter | None = None,
    ) -> None:
        self._client = client
        self._window_ms = int(window_s * 1000)
        self._prefix = prefix
        # Degraded mode: a per-process window when Redis fails. It also counts what Redis
        # admitted here, so a failover mid-window does not start this process from zero.
        self._fallback = fallback

    async def admit(self, user_id: str, limit: int) -> RpmDecision:
        member = secrets.token_hex(8)
        try:
            admitted, count, reset_ms = await self._client.run(
                SLIDING_WINDOW, [self._prefix + user_id], [limit, self._window_ms, member]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            if self._fallback is not None:
                log.warning("rate_limiter_degraded", error=type(exc).__name__)
                return await self._fallback.admit(user_id, limit)
            raise ServiceUnavailable("The rate limiter is unavailable; try again soon.") from exc
        if admitted and self._fallback is not None:
            self._fallback.note(user_id)
        return RpmDecision(
            allowed=bool(admitted),
            limit=limit,
            remaining=max(0, limit - int(count)),
            reset_s=max(0, int(reset_ms)) / 1000,
        )


class RedisTokenWindow:
    """Tokens per fixed window, per key, shared through Redis (a deployment's TPM cap)."""

    def __init__(self, client: RespClient, window_s: float, *, prefix: str) -> None:
        self._client = client
        self._window_ms = int(window_s * 1000)
        self._prefix = prefix

    async def add(self, key: str, tokens: int) -> int:
        try:
            spent = await self._client.run(
                TOKEN_WINDOW, [self._prefix + key], [self._window_ms, tokens]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("The rate limiter is unavailable; try again soon.") from exc
        return int(spent)
