"""Pure sliding-log window arithmetic (the memory backend's core)."""

from __future__ import annotations

from collections import deque

from lowart.limits.base import RpmDecision


def admit(log: deque[float], limit: int, window_s: float, now: float) -> RpmDecision:
    """Drop expired entries, then admit and record ``now`` if the window has room."""
    horizon = now - window_s
    while log and log[0] <= horizon:
        log.popleft()
    if len(log) >= limit:
        reset = log[0] + window_s - now
        return RpmDecision(allowed=False, limit=limit, remaining=0, reset_s=reset)
    log.append(now)
    return RpmDecision(
        allowed=True, limit=limit, remaining=limit - len(log), reset_s=log[0] + window_s - now
    )


def quota_grant(
    quota: int, used: int, reserved: int, want: int, *, capped_in_flight: bool = False
) -> int:
    """Tokens to reserve: ``want`` capped at what remains; 0 means refuse.

    A capped reservation may overspend by its excess, so only one may be in flight per user:
    the overspend of a user is then bounded by one request's excess.
    """
    remaining = quota - used - reserved
    if remaining <= 0 or (want > remaining and capped_in_flight):
        return 0
    return max(1, min(want, remaining))
