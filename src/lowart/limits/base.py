"""The limiter interfaces and the pure decisions they return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(slots=True)  # per request: frozen ones cost more to build
class RpmDecision:
    """The outcome of one RPM check."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the oldest admitted request leaves the window

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's ``x-ratelimit-*-requests`` headers, ready for the wire."""
        return [
            (b"x-ratelimit-limit-requests", b"%d" % self.limit),
            (b"x-ratelimit-remaining-requests", b"%d" % self.remaining),
            (b"x-ratelimit-reset-requests", b"%ds" % max(0, -(-self.reset_s // 1))),
        ]


@dataclass(slots=True)
class Reservation:
    """Tokens held for one request in flight."""

    user_id: str
    amount: int
    capped: bool = False  # less than wanted: the quota's last tokens
    settled: bool = False
    id: str = ""  # the shared ledger's handle; empty for an in-process reservation


class RateLimiter(Protocol):
    """Sliding-window requests-per-minute, per user."""

    async def admit(self, user_id: str, limit: int) -> RpmDecision:
        """Count the request if it fits in the window; refused requests do not count."""
        ...


class TokenWindow(Protocol):
    """Tokens spent per window, per key (a deployment's TPM cap, docs/api.md "Deployments")."""

    async def add(self, key: str, tokens: int) -> int:
        """Count ``tokens`` (0: only read); the tokens of the current window, these included."""
        ...


class QuotaLedger(Protocol):
    """Token reservations in flight, and settled usage not yet in the database snapshot.

    ``settled`` is the user's ``token_used`` in this process's snapshot of the database; the
    ledger adds what the snapshot cannot hold yet: usage settled but not flushed, and usage
    flushed after the snapshot was read.
    """

    async def reserve(
        self, user_id: str, quota: int, settled: int, want: int
    ) -> Reservation | None:
        """Hold up to ``want`` tokens; None when nothing remains."""
        ...

    async def settle(self, reservation: Reservation, actual: int) -> None:
        """Replace the reservation with the real usage."""
        ...

    def charge(self, user_id: str, actual: int) -> None:
        """Usage with no reservation (a user without a quota)."""
        ...

    async def flushed(self, deltas: Mapping[str, int], tags: Mapping[str, Sequence[str]]) -> None:
        """Usage the database now holds: ``deltas`` per user, ``tags`` of the settlements."""
        ...

    async def reload(self, load: Callable[[], Awaitable[T]]) -> T:
        """Run ``load`` (a new database snapshot) and account for what it includes."""
        ...


async def settle_recovered(quota: QuotaLedger, deltas: Mapping[str, int]) -> None:
    """Usage of a dead instance's requests, recovered into the database by this process: count
    it as settled and written. The dead process's reservations ended with it (in memory) or end
    with their lease (Redis), so nothing is reserved twice for long."""
    for user_id, tokens in deltas.items():
        quota.charge(user_id, tokens)
    await quota.flushed(deltas, {})
