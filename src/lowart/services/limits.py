"""The RPM limiter and the quota ledger: in-process, or shared through Redis."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis.asyncio as aioredis

from lowart.limits.base import QuotaLedger, RateLimiter, TokenWindow
from lowart.limits.memory import MemoryQuotaLedger, MemoryRateLimiter, MemoryTokenWindow
from lowart.limits.redis import RedisRateLimiter, RedisTokenWindow, connect
from lowart.limits.redis_quota import RedisQuotaLedger
from lowart.limits.redis_tpm import RedisTokenLimiter
from lowart.limits.resp import RespClient
from lowart.limits.tpm import MemoryTokenLimiter, TokenLimiter
from lowart.settings import Settings
from lowart.watchdog import Watchdog


@dataclass(frozen=True)
class Limits:
    """The RPM limiter and the quota ledger, and with Redis the clients they share it through."""

    redis: aioredis.Redis | None  # pub/sub, /ready
    scripts: RespClient | None  # the hot path's scripts
    rate_limiter: RateLimiter
    quota: QuotaLedger
    budgets: QuotaLedger  # the same ledger, keyed by budget and period, in micro-units
    tokens: TokenLimiter  # TPM windows
    deployment_rpm: RateLimiter  # deployments' RPM caps (docs/api.md, "Deployments")
    deployment_tokens: TokenWindow  # and their TPM caps

    async def close(self) -> None:
        """Release the Redis connections (nothing to release in-process)."""
        if self.redis is not None:
            await self.redis.aclose()
        if self.scripts is not None:
            await self.scripts.close()


def build_limits(settings: Settings, watchdog: Watchdog) -> Limits:
    """In-process without ``REDIS_URL``; shared through Redis with it."""
    local_rpm = MemoryRateLimiter(settings.limits.rpm_window_s)
    local_quota, local_budgets = MemoryQuotaLedger(), MemoryQuotaLedger()
    local_tpm = MemoryTokenLimiter(settings.limits.tpm_window_s)
    window_s = settings.limits.rpm_window_s
    if settings.redis.url is None:
        deployments = MemoryRateLimiter(window_s), MemoryTokenWindow(window_s)
        return Limits(None, None, local_rpm, local_quota, local_budgets, local_tpm, *deployments)
    timeout_s = settings.redis.timeout_ms / 1000
    client = connect(settings.redis.url, timeout_s)
    scripts = RespClient(settings.redis.url, timeout_s, watchdog)
    degraded = settings.redis.failure_mode == "degraded"
    ledger = functools.partial(
        RedisQuotaLedger,
        scripts,
        lease_s=settings.limits.quota_lease_s,
        pending_ttl_s=settings.limits.quota_pending_ttl_s,
        degraded=degraded,
    )
    quota = ledger(local_quota)
    budgets = ledger(local_budgets, prefix="lowart:budget:")
    rpm = RedisRateLimiter(
        scripts, settings.limits.rpm_window_s, fallback=local_rpm if degraded else None
    )
    tpm = RedisTokenLimiter(
        scripts, settings.limits.tpm_window_s, fallback=local_tpm if degraded else None
    )
    deployment_rpm = RedisRateLimiter(scripts, window_s, prefix="lowart:deployment-rpm:")
    tokens = RedisTokenWindow(scripts, window_s, prefix="lowart:deployment-tpm:")
    return Limits(client, scripts, rpm, quota, budgets, tpm, deployment_rpm, tokens)
