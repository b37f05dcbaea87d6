"""The gateway's error tree: every failure a caller can see, with its status and wire names.

::

    LowartError
    ├── InvalidRequest            400  invalid_request_error
    │   ├── RequestTooLarge       413  invalid_request_error / request_too_large
    │   └── TransformRejected     400  invalid_request_error / transform_rejected (fail())
    ├── AuthError                 401  invalid_request_error / invalid_api_key
    ├── PermissionDenied          403  permission_error / permission_denied
    ├── NotFound                  404  invalid_request_error / not_found
    │   └── ModelNotFound         404  invalid_request_error / model_not_found
    ├── MethodNotAllowed          405  invalid_request_error / method_not_allowed
    ├── Conflict                  409  invalid_request_error / conflict
    │   ├── IdempotencyInProgress 409  … / idempotency_in_progress  (retry)
    │   └── IdempotencyStreamed   409  … / idempotency_stream       (no retry)
    ├── IdempotencyMismatch       422  invalid_request_error / idempotency_key_mismatch
    ├── Expired                   410  invalid_request_error / expired
    ├── RateLimited               429  rate_limit_error / rate_limit_exceeded  (retry_after)
    │   ├── QuotaExceeded         429  insufficient_quota                      (no retry)
    │   ├── TokensNeverFit        429  rate_limit_exceeded (beyond TPM)        (no retry)
    │   └── UpstreamRateLimited   429  rate_limit_error / upstream_rate_limited
    ├── UpstreamError             502  upstream_error                          (no retry)
    │   ├── UpstreamCredentialsRefused (the vendor refused the gateway's key: no retry)
    │   ├── UpstreamAnswerBroken  (a 2xx answer broke after its head: no retry, no fallback)
    │   └── UpstreamStreamError   (an error event mid-stream, keeping the vendor's type)
    ├── UpstreamLost              502  upstream_error / upstream_lost          (no retry)
    ├── Overloaded                503  upstream_unavailable                    (no retry)
    ├── UpstreamTimeout           504  upstream_timeout                        (no retry)
    ├── ServiceUnavailable        503  service_unavailable (the gateway's own store or limiter)
    ├── TransformFailed           500  server_error / transform_failed (a script broke or overran)
    │   └── Shed                  503  overloaded (MAX_IN_FLIGHT reached; retry after 1 s)
    └── UpstreamClientError       4xx  an upstream's own client-caused error, relayed as it came

Errors are raised, never returned, and rendered in one place (``api/errors.py``) in the caller's
format: OpenAI's ``{"error": {...}}`` or Anthropic's ``{"type": "error", "error": {...}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class LowartError(Exception):
    """Base of every error the gateway renders to a caller."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None
    anthropic_type: ClassVar[str] = "api_error"
    metric: ClassVar[str] = "internal"
    should_retry: ClassVar[bool | None] = None
    upstream_status: int | None = None  # the vendor's HTTP status behind it, if any (for logs)

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def http_status(self) -> int:
        """The status to answer with (an instance may override the class's)."""
        return self.status

    @property
    def error_type(self) -> str:
        """OpenAI's ``error.type``."""
        return self.type

    @property
    def error_code(self) -> str | None:
        """OpenAI's ``error.code``."""
        return self.code

    @property
    def anthropic_error_type(self) -> str:
        """Anthropic's ``error.type``."""
        return self.anthropic_type

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries."""
        if self.should_retry is None:
            return {}
        return {"x-should-retry": "true" if self.should_retry else "false"}


class InvalidRequest(LowartError):
    status = 400
    type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    metric = "invalid_request"


class RequestTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"
    anthropic_type = "request_too_large"
    metric = "request_too_large"


class TransformRejected(InvalidRequest):
    """A transform script called ``fail(msg)``: the caller sees the script's message."""

    code = "transform_rejected"
    metric = "transform_rejected"


class AuthError(LowartError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    anthropic_type = "authentication_error"
    metric = "auth"


class PermissionDenied(LowartError):
    status = 403
    type = "permission_error"
    code = "permission_denied"
    anthropic_type = "permission_error"
    metric = "permission"


class NotFound(LowartError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    anthropic_type = "not_found_error"
    metric = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"
    metric = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or you do not have access to it.", param="model"
        )


class MethodNotAllowed(LowartError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    anthropic_type = "invalid_request_error"
    metric = "method_not_allowed"

    def __init__(self, message: str, *, allow: str = "") -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        """RFC 9110: a 405 lists the methods the resource has."""
        return super().headers() | ({"allow": self.allow} if self.allow else {})


class Conflict(LowartError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"
    anthropic_type = "invalid_request_error"
    metric = "conflict"


class IdempotencyInProgress(Conflict):
    """The first request with this Idempotency-Key is still running (docs/api.md)."""

    code = "idempotency_in_progress"
    should_retry = True


class IdempotencyStreamed(Conflict):
    """The Idempotency-Key was used by a stream, and a stream is never replayed."""

    code = "idempotency_stream"
    should_retry = False


class IdempotencyMismatch(LowartError):
    """The Idempotency-Key was used with another body or on another route."""

    status = 422
    type = "invalid_request_error"
    code = "idempotency_key_mismatch"
    anthropic_type = "invalid_request_error"
    metric = "idempotency_mismatch"


class Expired(LowartError):
    status = 410
    type = "invalid_request_error"
    code = "expired"
    anthropic_type = "invalid_request_error"
    metric = "expired"


class RateLimited(LowartError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    metric = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.extra_headers = extra_headers

    def headers(self) -> dict[str, str]:
        headers = super().headers() | {k.decode(): v.decode() for k, v in self.extra_headers}
        if self.retry_after is not None:
            headers["retry-after"] = str(max(1, int(-(-self.retry_after // 1))))
        return headers


class QuotaExceeded(RateLimited):
    type = "insufficient_quota"
    code = "insufficient_quota"
    metric = "quota"
    should_retry = False


class TokensNeverFit(RateLimited):
    """A request whose own token reservation exceeds a TPM limit: waiting cannot help."""

    should_retry = False


class UpstreamRateLimited(RateLimited):
    code = "upstream_rate_limited"
    metric = "upstream_rate_limited"
    should_retry = False

    def __init__(self, message: str, *, retry_after_header: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_header = retry_after_header

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.retry_after_header:
            headers["retry-after"] = self.retry_after_header
        return headers


class UpstreamError(LowartError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"
    anthropic_type = "api_error"
    metric = "upstream_error"
    should_retry = False


class UpstreamCredentialsRefused(UpstreamError):
    """The vendor refused the gateway's own key (401/403): not retried, but may fall back."""


class UpstreamAnswerBroken(UpstreamError):
    """A whole answer failed after the head of a 2xx arrived (cut, stalled, too large or
    unreadable): the vendor may already have generated and billed it, so it is never sent again,
    neither retried nor handed to a fallback."""

    metric = "upstream_answer_broken"


class UpstreamStreamError(UpstreamError):
    """An error event inside an upstream stream, keeping the vendor's own error type."""

    def __init__(self, message: str, *, upstream_type: str) -> None:
        super().__init__(message)
        self.upstream_type = upstream_type

    @property
    def anthropic_error_type(self) -> str:
        return self.upstream_type


class UpstreamLost(LowartError):
    """The upstream no longer knows work the gateway handed it (ComfyUI restarted): no retry."""

    status = 502
    type = "upstream_error"
    code = "upstream_lost"
    anthropic_type = "api_error"
    metric = "upstream_lost"
    should_retry = False


class Overloaded(LowartError):
    status = 503
    type = "upstream_unavailable"
    code = "upstream_unavailable"
    anthropic_type = "overloaded_error"
    metric = "overloaded"
    should_retry = False


class UpstreamTimeout(LowartError):
    status = 504
    type = "upstream_timeout"
    code = "upstream_timeout"
    anthropic_type = "api_error"
    metric = "upstream_timeout"
    should_retry = False


class ServiceUnavailable(LowartError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"
    anthropic_type = "overloaded_error"
    metric = "unavailable"


class TransformFailed(LowartError):
    """A transform script raised, returned a wrong value, overran its time or memory, or its
    worker died (docs/transforms.md, "Limits")."""

    status = 500
    type = "server_error"
    code = "transform_failed"
    anthropic_type = "api_error"
    metric = "transform_failed"
    should_retry = False


class Shed(ServiceUnavailable):
    """``MAX_IN_FLIGHT`` requests are already running: refused at once, before any work."""

    code = "overloaded"
    metric = "shed"
    should_retry = True

    def headers(self) -> dict[str, str]:
        return super().headers() | {"retry-after": "1"}


class UpstreamClientError(LowartError):
    """A client-caused upstream 4xx (400, 413, 422...), relayed with its own status and body."""

    type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    metric = "upstream_client_error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self._status = status
        self.upstream_type = error_type or "invalid_request_error"
        self.upstream_code = code

    @property
    def http_status(self) -> int:
        return self._status

    @property
    def error_type(self) -> str:
        return self.upstream_type

    @property
    def error_code(self) -> str | None:
        return self.upstream_code

    @property
    def anthropic_error_type(self) -> str:
        return _ANTHROPIC_TYPE_BY_STATUS.get(self._status, "invalid_request_error")


_ANTHROPIC_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
}


class StartupError(Exception):
    """A configuration or state problem that must stop the gateway from starting."""
