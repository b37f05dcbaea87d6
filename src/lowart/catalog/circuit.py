"""Circuit breakers, one per model: a failure ratio over a sliding window opens one, a probe
after the cooldown closes it again. Pure state machines: ``now`` is always passed in."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class CircuitConfig:
    """When a breaker opens and how long it stays open."""

    window_s: float = 30.0
    min_calls: int = 5
    failure_ratio: float = 0.5
    cooldown_s: float = 30.0


class Breaker:
    """One model's breaker: closed → open on too many failures → half-open probe → closed."""

    def __init__(self, config: CircuitConfig) -> None:
        self._config = config
        self._calls: deque[tuple[float, bool]] = deque()  # (time, failed)
        self.state = CLOSED
        self._opened_at = 0.0
        self._probing = False

    def allow(self, now: float) -> bool:
        """May a request go to this model now? In half-open state, one probe at a time."""
        if self.state == OPEN and now - self._opened_at >= self._config.cooldown_s:
            self.state = HALF_OPEN
            self._probing = False
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record(self, now: float, *, failed: bool) -> None:
        """The outcome of a call that ``allow`` let through."""
        if self.state == HALF_OPEN:
            self._probing = False
            if failed:
                self._open(now)
            else:
                self.state = CLOSED
                self._calls.clear()
            return
        self._calls.append((now, failed))
        horizon = now - self._config.window_s
        while self._calls and self._calls[0][0] <= horizon:
            self._calls.popleft()
        failures = sum(1 for _, f in self._calls if f)
        if (
            len(self._calls) >= self._config.min_calls
            and failures / len(self._calls) >= self._config.failure_ratio
        ):
            self._open(now)

    def abandon(self) -> None:
        """A let-through call ended without a verdict (the client left): free the probe."""
        self._probing = False

    def _open(self, now: float) -> None:
        self.state = OPEN
        self._opened_at = now
        self._calls.clear()


class Circuits:
    """The breakers of every model, created on first use."""

    def __init__(self, config: CircuitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._breakers: dict[str, Breaker] = {}

    def _breaker(self, model_id: str) -> Breaker:
        breaker = self._breakers.get(model_id)
        if breaker is None:
            breaker = self._breakers[model_id] = Breaker(self._config)
        return breaker

    def allow(self, model_id: str) -> bool:
        return self._breaker(model_id).allow(self._clock())

    def record(self, model_id: str, *, failed: bool) -> None:
        self._breaker(model_id).record(self._clock(), failed=failed)

    def abandon(self, model_id: str) -> None:
        self._breaker(model_id).abandon()

    def state(self, model_id: str) -> str:
        return self._breaker(model_id).state
