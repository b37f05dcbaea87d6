"""Tokens per minute: a sliding window weighted by each request's tokens, in memory.

A request counts its token reservation when it is admitted, and its real usage replaces that
when it ends (``correct``), as long as it is still in the window. A request whose own reservation
exceeds the limit can never fit and is told so (docs/api.md, "Rate limits").
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class TpmDecision:
    """The outcome of one TPM check; ``id`` is the entry to correct on settlement."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the window has room again (allowed: until it is empty)
    id: str = ""
    key: str = ""

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's ``x-ratelimit-*-tokens`` headers, ready for the wire."""
        return [
            (b"x-ratelimit-limit-tokens", b"%d" % self.limit),
            (b"x-ratelimit-remaining-tokens", b"%d" % self.remaining),
            (b"x-ratelimit-reset-tokens", b"%ds" % max(0, -(-self.reset_s // 1))),
        ]


class TokenLimiter(Protocol):
    """Tokens per minute, per key (a user's or an API key's)."""

    async def admit(self, key: str, limit: int, want: int) -> TpmDecision:
        """Count ``want`` tokens if they fit in the window; refused requests do not count."""
        ...

    async def correct(self, decision: TpmDecision, actual: int) -> None:
        """Replace an admitted request's tokens with what it really used."""
        ...


@dataclass(slots=True)
class _Entry:
    at: float
    tokens: int
    id: str


class _Window:
    def __init__(self) -> None:
        self.entries: deque[_Entry] = deque()
        self.by_id: dict[str, _Entry] = {}
        self.total = 0

    def expire(self, horizon: float) -> None:
        while self.entries and self.entries[0].at <= horizon:
            entry = self.entries.popleft()
            self.total -= entry.tokens
            del self.by_id[entry.id]


def _reset(window: _Window, need: int, limit: int, window_s: float, now: float) -> float:
    """Seconds until ``need`` more tokens fit: entries leave the window oldest first."""
    free = limit - window.total
    for entry in window.entries:
        free += entry.tokens
        if free >= need:
            return entry.at + window_s - now
    return window_s


class MemoryTokenLimiter:
    """A weighted sliding log per key, exact for one process."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def admit(self, key: str, limit: int, want: int) -> TpmDecision:
        now = self._clock()
        window = self._windows.setdefault(key, _Window())
        window.expire(now - self._window_s)
        if window.total + want > limit:
            reset = _reset(window, want, limit, self._window_s, now)
            return TpmDecision(False, limit, max(0, limit - window.total), reset, key=key)
        entry = _Entry(now, want, secrets.token_hex(8))
        window.entries.append(entry)
        window.by_id[entry.id] = entry
        window.total += want
        reset = window.entries[0].at + self._window_s - now
        return TpmDecision(True, limit, limit - window.total, reset, entry.id, key)

    async def correct(self, decision: TpmDecision, actual: int) -> None:
        window = self._windows.get(decision.key)
        entry = window.by_id.get(decision.id) if window is not None else None
        if window is None or entry is None:
            return  # it left the window already
        window.total += max(0, actual) - entry.tokens
        entry.tokens = max(0, actual)
