"""What this instance knows of each deployment of a model with several (docs/api.md,
"Deployments"): requests in flight, recent times to first byte, cooling after a 429, and
errors. Per instance, kept in memory; the clock is injected."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """The latency window and the cooling of a 429 that names no ``Retry-After``."""

    latency_window_s: float = 60.0
    cooling_s: float = 5.0


@dataclass(slots=True)
class _Stats:
    in_flight: int = 0
    cooling_until: float = 0.0
    errors: int = 0
    served: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Window:
    """Times to first byte within the window, with their running sum (O(1) per request)."""

    samples: deque[tuple[float, float]] = field(default_factory=deque)
    total: float = 0.0

    def trim(self, horizon: float) -> None:
        samples = self.samples
        while samples and samples[0][0] <= horizon:
            self.total -= samples.popleft()[1]
        if not samples:
            self.total = 0.0  # no drift left behind by the float sums


class DeploymentHealth:
    """Per-deployment counters and windows, by ``ModelEntry.health_key``."""

    def __init__(self, config: HealthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._stats: defaultdict[str, _Stats] = defaultdict(_Stats)
        self._windows: defaultdict[str, _Window] = defaultdict(_Window)
        self._cooling_until = 0.0  # the latest end of any cooling

    def started(self, key: str) -> None:
        self._stats[key].in_flight += 1

    def ended(self, key: str) -> None:
        stats = self._stats[key]
        stats.in_flight = max(0, stats.in_flight - 1)

    def in_flight(self, key: str) -> int:
        found = self._stats.get(key)
        return found.in_flight if found is not None else 0

    def observe(self, key: str, first_byte_s: float) -> None:
        """A served attempt's time to first byte."""
        self._stats[key].served += 1
        window, now = self._windows[key], self._clock()
        window.samples.append((now, first_byte_s))
        window.total += first_byte_s
        window.trim(now - self.config.latency_window_s)

    def latency(self, key: str) -> float | None:
        """The mean time to first byte over the window; None when nothing was measured in it."""
        window = self._windows.get(key)
        if window is None:
            return None
        window.trim(self._clock() - self.config.latency_window_s)
        return window.total / len(window.samples) if window.samples else None

    def failed(self, key: str, error: str) -> None:
        stats = self._stats[key]
        stats.errors += 1
        stats.last_error = error

    def cool(self, key: str, seconds: float | None) -> None:
        """A 429: no request goes to the deployment for ``seconds`` (its ``Retry-After``)."""
        wait = self.config.cooling_s if seconds is None else seconds
        stats = self._stats[key]
        stats.cooling_until = max(stats.cooling_until, self._clock() + wait)
        self._cooling_until = max(self._cooling_until, stats.cooling_until)

    def any_cooling(self) -> bool:
        """Is any deployment cooling now? (One clock read: the router's hot path.)"""
        return self._cooling_until > self._clock()

    def cooling(self, key: str) -> bool:
        found = self._stats.get(key)
        return found is not None and found.cooling_until > self._clock()

    def report(self, key: str) -> dict[str, object]:
        """The live view the admin API shows (docs/api.md, "Deployments")."""
        stats = self._stats.get(key) or _Stats()
        left = stats.cooling_until - self._clock()
        latency = self.latency(key)
        return {
            "in_flight": stats.in_flight,
            "cooling_s": round(left, 3) if left > 0 else 0,
            "latency_ms": round(latency * 1000, 1) if latency is not None else None,
            "served": stats.served,
            "errors": stats.errors,
            "last_error": stats.last_error,
        }
