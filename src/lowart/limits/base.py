"""The limiter interfaces and the pure decisions they return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RpmDecision:
    """The outcome of one RPM check."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the oldest admitted request leaves the window

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*-requests`` headers."""
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{max(0, -(-self.reset_s // 1)):.0f}s",
        }


@dataclass(slots=True)
class Reservation:
    """Tokens held for one request in flight."""

    user_id: str
    amount: int
    capped: bool = False  # less than wanted: the quota's last tokens
    settled: bool = False


class RateLimiter(Protocol):
    """Sliding-window requests-per-minute, per user."""

    async def admit(self, user_id: str, limit: int) -> RpmDecision:
        """Count the request if it fits in the window; refused requests do not count."""
        ...


class QuotaLedger(Protocol):
    """Token reservations in flight, and settled usage not yet in the database snapshot."""

    async def reserve(
        self, user_id: str, quota: int, settled: int, want: int
    ) -> Reservation | None:
        """Hold up to ``want`` tokens; None when nothing remains."""
        ...

    async def settle(self, reservation: Reservation, actual: int) -> None:
        """Replace the reservation with the real usage."""
        ...

    def record(self, user_id: str, actual: int) -> None:
        """Usage with no reservation (a user without a quota)."""
        ...

    def mark_flushed(self, deltas: Mapping[str, int]) -> None:
        """Settled usage that the database now holds, but the snapshot does not yet."""
        ...

    def snapshot_loaded(self) -> None:
        """A new snapshot includes everything flushed so far."""
        ...

    def unsettled(self, user_id: str) -> int:
        """Tokens settled in memory but not yet in the snapshot."""
        ...
