"""Pure mapping of an upstream's error status to the gateway's error tree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from lowart.errors import (
    LowartError,
    UpstreamClientError,
    UpstreamCredentialsRefused,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

log = structlog.get_logger()

CLIENT_FAULT = frozenset({400, 404, 409, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """What an upstream error body said, in neutral form."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after: str | None = None


def error_for(model_id: str, failure: UpstreamFailure) -> LowartError:
    """A client-caused 4xx is relayed as it came; everything else becomes the gateway's error."""
    error = _error_for(model_id, failure)
    error.upstream_status = failure.status
    return error


def _error_for(model_id: str, failure: UpstreamFailure) -> LowartError:
    status = failure.status
    if status < 400:  # redirects are never followed: the vendor's answer is elsewhere
        return UpstreamError(
            f"The upstream for '{model_id}' answered with a redirect (status {status}), "
            "which the gateway does not follow."
        )
    if status in CLIENT_FAULT:
        return UpstreamClientError(
            status, failure.message, error_type=failure.type, code=failure.code, param=failure.param
        )
    if status == 429:
        return UpstreamRateLimited(
            f"The upstream for '{model_id}' is rate limited.",
            retry_after_header=failure.retry_after,
        )
    if status == 408:
        return UpstreamTimeout(f"The upstream for '{model_id}' timed out.")
    if status in (401, 403):
        # The gateway's own vendor credentials were refused: an operator problem, not the caller's.
        log.error("upstream_credentials_refused", model_id=model_id, status=status)
        return UpstreamCredentialsRefused(
            f"The upstream for '{model_id}' refused the gateway's credentials."
        )
    return UpstreamError(f"The upstream for '{model_id}' failed with status {status}.")


ReadFailure = Callable[[int, bytes, str | None], UpstreamFailure]  # a vendor's error body reader


def check_status(
    model_id: str, status: int, headers: Mapping[str, str], body: bytes, read: ReadFailure
) -> None:
    """Raise the gateway's error for an upstream error or redirect status (3xx, 4xx, 5xx), its
    body read by ``read``."""
    if status >= 300:
        raise error_for(model_id, read(status, body, headers.get("retry-after")))
