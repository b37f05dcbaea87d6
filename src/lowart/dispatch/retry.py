"""When to try the same model again, and after how long: a pure decision."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass

from lowart.errors import LowartError, UpstreamCredentialsRefused, UpstreamRateLimited


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Retries of one model, and the caps across the whole chain."""

    retries: int = 1  # extra tries of the same model
    backoff_s: float = 0.2  # base of the exponential backoff
    backoff_max_s: float = 2.0
    retry_after_max_s: float = 0.0  # wait out an upstream's Retry-After only up to this
    max_attempts: int = 6  # upstream attempts across the chain
    deadline_s: float = 900.0  # the whole request, retries and fallbacks included


def retry_after_seconds(header: str | None, now: dt.datetime) -> float | None:
    """An upstream's ``Retry-After`` (seconds or an HTTP date) as seconds."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


class RetryPolicy:
    """Exponential backoff with jitter; an upstream's Retry-After is honoured, never undercut."""

    def __init__(self, config: RetryConfig, jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._jitter = jitter

    def delay(self, error: LowartError, retry: int, remaining_s: float) -> float | None:
        """Seconds to wait before retry number ``retry + 1`` of the same model; None: move on."""
        if retry >= self.config.retries or isinstance(error, UpstreamCredentialsRefused):
            return None  # the same key would be refused again
        if isinstance(error, UpstreamRateLimited):
            wait = retry_after_seconds(error.retry_after_header, dt.datetime.now(dt.UTC))
            if wait is not None and wait > self.config.retry_after_max_s:
                return None  # never sooner than the upstream asked: fall back instead
        else:
            wait = None
        if wait is None:
            ceiling = min(self.config.backoff_max_s, self.config.backoff_s * 2**retry)
            wait = ceiling * (0.5 + self._jitter() / 2)
        return wait if wait < remaining_s else None
