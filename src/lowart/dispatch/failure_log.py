"""Log lines for upstream attempts that failed and for fallbacks: what an operator needs to see
why a request got a 502 or went elsewhere, with no secret (the reason is already in words)."""

from __future__ import annotations

import time

import structlog

from lowart.dispatch.attempt import Attempt
from lowart.errors import LowartError
from lowart.model_entry import ModelEntry
from lowart.providers.transport_failure import host_of

log = structlog.get_logger()


def attempt_failed(attempt: Attempt, error: LowartError, try_number: int) -> None:
    """One failed attempt at ``warning``: the model, the vendor's host, which try of that model,
    the reason class (the error's metric name), the vendor's status if one came, the elapsed
    time, and the reason in words. A client-caused upstream 4xx is the caller's: ``info``."""
    model = attempt.model
    fields = {
        "request_id": attempt.request.request_id,
        "model_id": model.model_id,
        "host": host_of(model.base_url),
        "attempt": try_number,
        "reason": error.metric,
        "status": error.upstream_status,
        "elapsed_ms": round((time.perf_counter() - attempt.started) * 1000, 1),
    }
    if error.http_status >= 500 or error.http_status == 429:
        log.warning("upstream_attempt_failed", **fields, error=error.message)
    else:  # relayed to the caller as it came; its text is the vendor's, not logged
        log.info("upstream_attempt_failed", **fields)


def fallback(request_id: str, from_model: ModelEntry, to_model: ModelEntry) -> None:
    """The chain moves on to the next model."""
    log.warning(
        "upstream_fallback",
        request_id=request_id,
        from_model=from_model.model_id,
        to_model=to_model.model_id,
    )
