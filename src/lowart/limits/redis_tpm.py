"""Tokens per minute shared through Redis: one atomic script on the server's clock admits, one
corrects (docs/api.md, "Rate limits").

Per key, a hash holds each admitted request's tokens (``<id>``) and their running ``total``; a
sorted set scores each id with its admission time (ms). Expired ids leave both at every call.
"""

from __future__ import annotations

import secrets

import structlog

from lowart.errors import ServiceUnavailable
from lowart.limits.redis_quota import REDIS_ERRORS
from lowart.limits.resp import RespClient, Script
from lowart.limits.tpm import MemoryTokenLimiter, TpmDecision

log = structlog.get_logger()

_EXPIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)) do
  local v = redis.call('HGET', KEYS[1], id)
  if v then redis.call('HINCRBY', KEYS[1], 'total', -tonumber(v)) end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
"""

# KEYS: the key's hash, its time set. ARGV: window (ms), limit, tokens wanted, a new id.
# Returns {admitted, total after, ms until the window has room for the request (or empties)}.
TPM_ADMIT = Script(
    _EXPIRE
    + """
local limit, want = tonumber(ARGV[2]), tonumber(ARGV[3])
local admitted = 0
if total + want <= limit then
  redis.call('HSET', KEYS[1], ARGV[4], want)
  redis.call('HINCRBY', KEYS[1], 'total', want)
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('PEXPIRE', KEYS[2], window)
  total = total + want
  admitted = 1
end
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
if admitted == 1 then
  return {admitted, total, tonumber(entries[2]) + window - now}
end
local free = limit - total
for i = 1, #entries, 2 do
  free = free + tonumber(redis.call('HGET', KEYS[1], entries[i]) or '0')
  if free >= want then return {admitted, total, tonumber(entries[i + 1]) + window - now} end
end
return {admitted, total, window}
"""
)

# KEYS: the key's hash, its time set. ARGV: window (ms), the id, its real tokens.
TPM_CORRECT = Script(
    _EXPIRE
    + """
local v = redis.call('HGET', KEYS[1], ARGV[2])
if v then
  redis.call('HINCRBY', KEYS[1], 'total', tonumber(ARGV[3]) - tonumber(v))
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
return 1
"""
)


class RedisTokenLimiter:
    """A weighted sliding window per key in Redis; degraded mode falls back to ``fallback``."""

    def __init__(
        self,
        client: RespClient,
        window_s: float,
        *,
        prefix: str = "lowart:tpm:",
        fallback: MemoryTokenLimiter | None = None,
    ) -> None:
        self._client = client
        self._window_ms = int(window_s * 1000)
        self._prefix = prefix
        self._fallback = fallback

    def _keys(self, key: str) -> list[str]:
        return [self._prefix + key, self._prefix + key + ":at"]

    async def admit(self, key: str, limit: int, want: int) -> TpmDecision:
        rid = secrets.token_hex(8)
        try:
            admitted, total, reset_ms = await self._client.run(
                TPM_ADMIT, self._keys(key), [self._window_ms, limit, want, rid]
            )
        except REDIS_ERRORS as exc:
            if self._fallback is not None:
                log.warning("token_limiter_degraded", error=type(exc).__name__)
                return await self._fallback.admit(key, limit, want)
            raise ServiceUnavailable("The rate limiter is unavailable; try again soon.") from exc
        remaining = max(0, limit - int(total))
        reset = max(0, int(reset_ms)) / 1000
        return TpmDecision(bool(admitted), limit, remaining, reset, rid if admitted else "", key)

    async def correct(self, decision: TpmDecision, actual: int) -> None:
        if not decision.id:
            return
        try:
            await self._client.run(
                TPM_CORRECT, self._keys(decision.key), [self._window_ms, decision.id, actual]
            )
        except REDIS_ERRORS as exc:  # the reservation stays counted until it leaves the window
            log.warning("token_correct_failed", error=type(exc).__name__)
