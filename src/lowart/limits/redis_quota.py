"""Quota reservations shared through Redis: every instance reserves from the same remainder.

The database holds each user's settled ``token_used``; every process reads it in its snapshot.
Redis holds what a snapshot cannot show yet, per user:

- ``reserved``: tokens held by requests in flight, each reservation with a lease, so that one
  held by a process that died is returned when its lease ends;
- ``pending``: usage settled but not yet written to the database, each entry removed when its
  process writes it (or when it expires, if that process died with it unwritten);
- a cumulative count of the tokens every process has written to the database. A process notes
  it just before it reads a snapshot, so the tokens written since are counted on top.

A reservation is one atomic script on Redis ``TIME``. A flush written just between that note
and the snapshot's read counts twice until the next snapshot: the error is on the safe side.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from redis.exceptions import RedisError

from lowart.errors import ServiceUnavailable
from lowart.limits.base import Reservation, T
from lowart.limits.memory import MemoryQuotaLedger
from lowart.limits.resp import RespClient, Script

log = structlog.get_logger()

REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# Hash fields: reserved, capped, pending; 'r<id>'/'c<id>' = a reservation's tokens (capped or
# not), 'p<id>' = a settlement's tokens not yet written. The sorted set scores each of those
# members with the time (ms) it expires.
_NOW_AND_EXPIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function release(member)
  local v = redis.call('HGET', KEYS[1], member)
  if not v then return end
  local kind = string.sub(member, 1, 1)
  if kind == 'p' then
    redis.call('HINCRBY', KEYS[1], 'pending', -tonumber(v))
  else
    redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(v))
    if kind == 'c' then redis.call('HINCRBY', KEYS[1], 'capped', -1) end
  end
  redis.call('HDEL', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
end
local function touch(keep)
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('PEXPIRE', KEYS[2], keep)
end
"""

# KEYS: user hash, user expiry set, flushed totals. ARGV: user, quota, snapshot's token_used,
# flushed total seen at the snapshot, tokens wanted, reservation id, lease (ms), keep (ms).
RESERVE = Script(
    _NOW_AND_EXPIRE
    + """
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do release(member) end
local state = redis.call('HMGET', KEYS[1], 'reserved', 'capped', 'pending')
local reserved = tonumber(state[1] or '0')
local capped = tonumber(state[2] or '0')
local flushed = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local used = tonumber(ARGV[3]) + tonumber(state[3] or '0')
  + math.max(0, flushed - tonumber(ARGV[4]))
local want = tonumber(ARGV[5])
local remaining = tonumber(ARGV[2]) - used - reserved
if remaining <= 0 or (want > remaining and capped > 0) then return 0 end
local amount = math.max(1, math.min(want, remaining))
local member = 'r' .. ARGV[6]
if amount < want then
  member = 'c' .. ARGV[6]
  redis.call('HINCRBY', KEYS[1], 'capped', 1)
end
redis.call('HSET', KEYS[1], member, amount)
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), member)
touch(ARGV[8])
return amount
"""
)

# KEYS: user hash, user expiry set. ARGV: reservation id, actual tokens, pending ttl (ms), keep.
SETTLE = Script(
    _NOW_AND_EXPIRE
    + """
release('r' .. ARGV[1])
release('c' .. ARGV[1])
local actual = tonumber(ARGV[2])
if actual > 0 then
  redis.call('HSET', KEYS[1], 'p' .. ARGV[1], actual)
  redis.call('HINCRBY', KEYS[1], 'pending', actual)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), 'p' .. ARGV[1])
  touch(ARGV[4])
end
return 1
"""
)

# KEYS: flushed totals, then each user's hash and expiry set. ARGV: per user: id, tokens
# written, the number of settlement ids, the ids. The ids' pending entries are dropped.
FLUSHED = Script("""
local i = 1
local k = 2
while i <= #ARGV do
  local user, delta, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local hash, expiry = KEYS[k], KEYS[k + 1]
  if delta ~= 0 then redis.call('HINCRBY', KEYS[1], user, delta) end
  for j = i + 3, i + 2 + n do
    local member = 'p' .. ARGV[j]
    local v = redis.call('HGET', hash, member)
    if v then
      redis.call('HINCRBY', hash, 'pending', -tonumber(v))
      redis.call('HDEL', hash, member)
      redis.call('ZREM', expiry, member)
    end
  end
  i = i + 3 + n
  k = k + 2
end
return 1
""")


class RedisQuotaLedger:
    """Reservations and unwritten usage kept in Redis, shared by every process.

    This process's own accounting is mirrored in ``local``: when Redis fails, degraded mode
    reserves from it (a per-process limit); closed mode refuses with 503.
    """

    def __init__(
        self,
        client: RespClient,
        local: MemoryQuotaLedger,
        *,
        lease_s: float,
        pending_ttl_s: float,
        degraded: bool,
        prefix: str = "lowart:quota:",
    ) -> None:
        self._client = client
        self._local = local
        self._lease_ms = int(lease_s * 1000)
        self._pending_ms = int(pending_ttl_s * 1000)
        self._keep_ms = max(self._lease_ms, self._pending_ms) + 1000
        self._degraded = degraded
        self._prefix = prefix
        self._flushed_key = prefix + "flushed"
        self._seen: dict[str, int] = {}  # flushed totals noted before the last snapshot

    def _keys(self, user_id: str) -> list[str]:
        return [f"{self._prefix}u:{user_id}", f"{self._prefix}u:{user_id}:expiry"]

    async def reserve(
        self, user_id: str, quota: int, settled: int, want: int
    ) -> Reservation | None:
        rid = secrets.token_hex(8)
        seen = self._seen.get(user_id, 0)
        args: list[str | int] = [
            user_id,
            quota,
            settled,
            seen,
            want,
            rid,
            self._lease_ms,
            self._keep_ms,
        ]
        try:
            amount = int(
                await self._client.run(RESERVE, [*self._keys(user_id), self._flushed_key], args)
            )
        except REDIS_ERRORS as exc:
            if not self._degraded:
                raise ServiceUnavailable(
                    "The quota ledger is unavailable; try again soon."
                ) from exc
            log.warning("quota_ledger_degraded", error=type(exc).__name__)
            return await self._local.reserve(user_id, quota, settled, want)
        if amount <= 0:
            return None
        return Reservation(user_id=user_id, amount=amount, capped=amount < want, id=rid)

    async def settle(self, reservation: Reservation, actual: int) -> None:
        if not reservation.id:  # reserved in-process while Redis was down
            await self._local.settle(reservation, actual)
            return
        if reservation.settled:
            return
        reservation.settled = True
        self._local.charge(reservation.user_id, actual)
        try:
            await self._client.run(
                SETTLE,
                self._keys(reservation.user_id),
                [reservation.id, max(0, actual), self._pending_ms, self._keep_ms],
            )
        except REDIS_ERRORS as exc:  # the lease returns the tokens; the flush counts the usage
            log.warning("quota_settle_failed", error=type(exc).__name__)

    def charge(self, user_id: str, actual: int) -> None:
        self._local.charge(user_id, actual)

    async def flushed(self, deltas: Mapping[str, int], tags: Mapping[str, Sequence[str]]) -> None:
        self._local.mark_flushed(deltas)
        keys: list[str] = [self._flushed_key]
        args: list[str | int] = []
        for user_id, delta in deltas.items():
            ids = tags.get(user_id, ())
            keys += self._keys(user_id)
            args += [user_id, delta, len(ids), *ids]
        if not args:
            return
        try:
            await self._client.run(FLUSHED, keys, args)
        except REDIS_ERRORS as exc:  # counted twice until the pending entries expire: safe side
            log.warning("quota_flush_note_failed", error=type(exc).__name__)

    async def reload(self, load: Callable[[], Awaitable[T]]) -> T:
        try:
            flat = await self._client.call("HGETALL", self._flushed_key)
        except REDIS_ERRORS:  # the older note counts some usage twice: the safe side
            flat = None
        loaded = await self._local.reload(load)
        if flat is not None:
            self._seen = {
                user.decode(): int(total) for user, total in zip(flat[::2], flat[1::2], strict=True)
            }
        return loaded
