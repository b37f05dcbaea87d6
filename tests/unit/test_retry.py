"""The retry policy: exponential backoff with jitter, Retry-After never undercut, deadlines."""

from __future__ import annotations

import datetime as dt

import pytest

from lowart.dispatch.retry import RetryConfig, RetryPolicy, retry_after_seconds
from lowart.errors import (
    UpstreamCredentialsRefused,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

CONFIG = RetryConfig(retries=3, backoff_s=0.1, backoff_max_s=0.3, retry_after_max_s=5)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_backoff_doubles_within_its_jitter_and_is_capped(jitter: float) -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: jitter)
    error = UpstreamError("boom")
    delays = [policy.delay(error, retry, remaining_s=100) for retry in range(3)]
    for retry, delay in enumerate(delays):
        ceiling = min(0.3, 0.1 * 2**retry)
        assert delay == pytest.approx(ceiling * (0.5 + jitter / 2))
        assert ceiling / 2 <= delay <= ceiling  # type: ignore[operator]


def test_retries_stop_after_the_configured_count() -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: 0.0)
    assert policy.delay(UpstreamTimeout("slow"), 3, remaining_s=100) is None
    assert RetryPolicy(RetryConfig(retries=0)).delay(UpstreamError("x"), 0, 100) is None


def test_retry_after_is_waited_exactly_when_short_enough() -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: 0.0)
    assert policy.delay(UpstreamRateLimited("429", retry_after_header="2"), 0, 100) == 2.0


def test_a_long_retry_after_falls_back_instead_of_retrying_sooner() -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: 0.0)
    assert policy.delay(UpstreamRateLimited("429", retry_after_header="7"), 0, 100) is None


def test_no_retry_past_the_deadline() -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: 1.0)
    assert policy.delay(UpstreamError("x"), 0, remaining_s=0.05) is None
    assert policy.delay(UpstreamRateLimited("429", retry_after_header="2"), 0, 1.5) is None


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_refused_vendor_credentials_are_not_retried() -> None:
    policy = RetryPolicy(CONFIG, jitter=lambda: 0.0)
    assert policy.delay(UpstreamCredentialsRefused("401"), 0, remaining_s=100) is None
