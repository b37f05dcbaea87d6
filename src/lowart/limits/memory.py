"""In-process limits: exact for one process (several processes need the Redis backend)."""

from __future__ import annotations

import sys
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

from lowart.limits.base import Reservation, RpmDecision, T
from lowart.limits.window import admit, quota_grant


class MemoryRateLimiter:
    """A sliding log of admission times per user."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._logs: defaultdict[str, deque[float]] = defaultdict(deque)

    async def admit(self, user_id: str, limit: int) -> RpmDecision:
        return admit(self._logs[user_id], limit, self._window, self._clock())

    def note(self, user_id: str) -> None:
        """Count a request admitted elsewhere (by the shared window), whatever the limit."""
        admit(self._logs[user_id], sys.maxsize, self._window, self._clock())


class MemoryTokenWindow:
    """Tokens per fixed window of ``window_s``, per key, in this process."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._spent: dict[str, tuple[int, int]] = {}  # key → (window number, tokens)

    async def add(self, key: str, tokens: int) -> int:
        window = int(self._clock() // self._window)
        current, spent = self._spent.get(key, (window, 0))
        spent = (spent if current == window else 0) + tokens
        self._spent[key] = (window, spent)
        return spent


class MemoryQuotaLedger:
    """Reservations and unsnapshotted settlements, per user."""

    def __init__(self) -> None:
        self._reserved: defaultdict[str, int] = defaultdict(int)
        self._pending: defaultdict[str, int] = defaultdict(int)  # settled, not yet flushed
        self._flushed: defaultdict[str, int] = defaultdict(int)  # flushed, not yet in snapshot
        self._capped: defaultdict[str, int] = defaultdict(int)  # capped reservations in flight

    def unsettled(self, user_id: str) -> int:
        return self._pending[user_id] + self._flushed[user_id]

    def reserved(self, user_id: str) -> int:
        return self._reserved[user_id]

    async def reserve(
        self, user_id: str, quota: int, settled: int, want: int
    ) -> Reservation | None:
        used = settled + self.unsettled(user_id)
        amount = quota_grant(
            quota, used, self._reserved[user_id], want, capped_in_flight=self._capped[user_id] > 0
        )
        if amount == 0:
            return None
        self._reserved[user_id] += amount
        capped = amount < want
        self._capped[user_id] += capped
        return Reservation(user_id=user_id, amount=amount, capped=capped)

    async def settle(self, reservation: Reservation, actual: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        self._reserved[reservation.user_id] -= reservation.amount
        self._capped[reservation.user_id] -= reservation.capped
        self._pending[reservation.user_id] += max(0, actual)

    def charge(self, user_id: str, actual: int) -> None:
        """Usage with no reservation (a user without a quota)."""
        self._pending[user_id] += max(0, actual)

    async def flushed(self, deltas: Mapping[str, int], tags: Mapping[str, Sequence[str]]) -> None:
        self.mark_flushed(deltas)

    async def reload(self, load: Callable[[], Awaitable[T]]) -> T:
        """Callers serialise this with ``flushed`` (one lock), so nothing slips between."""
        loaded = await load()
        self.snapshot_loaded()
        return loaded

    def mark_flushed(self, deltas: Mapping[str, int]) -> None:
        for user_id, delta in deltas.items():
            self._pending[user_id] -= delta
            self._flushed[user_id] += delta

    def snapshot_loaded(self) -> None:
        self._flushed.clear()
