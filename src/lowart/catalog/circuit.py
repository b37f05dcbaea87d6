"""Circuit breakers, one per model: a failure ratio over a sliding window opens one, a probe
after the cooldown closes it again. Pure state machines: ``now`` is always passed in."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger()

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
        # The window in buckets of a tenth of it: [start, calls, failures]. Totals are kept
        # incrementally, so a call costs O(1) however busy the model is.
        self._buckets: deque[list[float]] = deque()
        self._bucket_s = config.window_s / 10
        self._calls = 0
        self._failures = 0
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

    def report(self, now: float, *, failed: bool) -> None:
        """The outcome of a call that ``allow`` let through."""
        if self.state == HALF_OPEN:
            self._probing = False
            if failed:
                self._open(now)
            else:
                self.state = CLOSED
                self._clear()
            return
        self._count(now, failed)
        if (
            self._calls >= self._config.min_calls
            and self._failures / self._calls >= self._config.failure_ratio
        ):
            self._open(now)

    def _count(self, now: float, failed: bool) -> None:
        horizon = now - self._config.window_s
        while self._buckets and self._buckets[0][0] <= horizon:
            _, calls, failures = self._buckets.popleft()
            self._calls -= int(calls)
            self._failures -= int(failures)
        if not self._buckets or now - self._buckets[-1][0] >= self._bucket_s:
            self._buckets.append([now, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += failed
        self._calls += 1
        self._failures += failed

    def _clear(self) -> None:
        self._buckets.clear()
        self._calls = self._failures = 0

    def abandon(self) -> None:
        """A let-through call ended without a verdict (the client left): free the probe."""
        self._probing = False

    def _open(self, now: float) -> None:
        self.state = OPEN
        self._opened_at = now
        self._clear()


class Circuits:
    """The breakers of every model, created on first use; every change of state is logged."""

    def __init__(self, config: CircuitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._breakers = _Breakers(config)

    def allow(self, model_id: str) -> bool:
        breaker = self._breakers[model_id]
        was = breaker.state
        allowed = breaker.allow(self._clock())
        if breaker.state != was:
            _changed(model_id, was, breaker.state)
        return allowed

    def report(self, model_id: str, *, failed: bool) -> None:
        breaker = self._breakers[model_id]
        was = breaker.state
        breaker.report(self._clock(), failed=failed)
        if breaker.state != was:
            _changed(model_id, was, breaker.state)

    def abandon(self, model_id: str) -> None:
        self._breakers[model_id].abandon()

    def state(self, model_id: str) -> str:
        return self._breakers[model_id].state


def _changed(model_id: str, was: str, now: str) -> None:
    """An opened circuit is a warning (the model is skipped); a probe or a closing is news."""
    (log.warning if now == OPEN else log.info)(
        "circuit_state_changed", model_id=model_id, previous=was, state=now
    )


class _Breakers(dict[str, Breaker]):
    """Breakers by model id, each made on first lookup (in C: no Python call per lookup)."""

    def __init__(self, config: CircuitConfig) -> None:
        super().__init__()
        self._config = config

    def __missing__(self, model_id: str) -> Breaker:
        breaker = self[model_id] = Breaker(self._config)
        return breaker
