"""Every error class renders with its status, headers and body in the caller's format."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from lowart import errors
from lowart.api.errors import is_anthropic_path, render
from lowart.errors import LowartError

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens")


class Case(NamedTuple):
    make: Callable[[], LowartError]
    status: int
    type: str
    code: str | None
    anthropic_type: str
    anthropic_status: int


CASES: dict[type[LowartError], Case] = {
    errors.LowartError: Case(
        lambda: errors.LowartError("boom"), 500, "server_error", None, "api_error", 500
    ),
    errors.InvalidRequest: Case(
        lambda: errors.InvalidRequest("bad", param="messages"),
        400,
        "invalid_request_error",
        None,
        "invalid_request_error",
        400,
    ),
    errors.RequestTooLarge: Case(
        lambda: errors.RequestTooLarge("too big"),
        413,
        "invalid_request_error",
        "request_too_large",
        "request_too_large",
        413,
    ),
    errors.TransformRejected: Case(
        lambda: errors.TransformRejected("prompts may not name the admin"),
        400,
        "invalid_request_error",
        "transform_rejected",
        "invalid_request_error",
        400,
    ),
    errors.TransformFailed: Case(
        lambda: errors.TransformFailed("the transform's worker died"),
        500,
        "server_error",
        "transform_failed",
        "api_error",
        500,
    ),
    errors.AuthError: Case(
        lambda: errors.AuthError("no key"),
        401,
        "invalid_request_error",
        "invalid_api_key",
        "authentication_error",
        401,
    ),
    errors.PermissionDenied: Case(
        lambda: errors.PermissionDenied("no"),
        403,
        "permission_error",
        "permission_denied",
        "permission_error",
        403,
    ),
    errors.NotFound: Case(
        lambda: errors.NotFound("no job"),
        404,
        "invalid_request_error",
        "not_found",
        "not_found_error",
        404,
    ),
    errors.ModelNotFound: Case(
        lambda: errors.ModelNotFound("gpt-9"),
        404,
        "invalid_request_error",
        "model_not_found",
        "not_found_error",
        404,
    ),
    errors.MethodNotAllowed: Case(
        lambda: errors.MethodNotAllowed("GET"),
        405,
        "invalid_request_error",
        "method_not_allowed",
        "invalid_request_error",
        405,
    ),
    errors.Conflict: Case(
        lambda: errors.Conflict("confirmed"),
        409,
        "invalid_request_error",
        "conflict",
        "invalid_request_error",
        409,
    ),
    errors.IdempotencyInProgress: Case(
        lambda: errors.IdempotencyInProgress("running"),
        409,
        "invalid_request_error",
        "idempotency_in_progress",
        "invalid_request_error",
        409,
    ),
    errors.IdempotencyStreamed: Case(
        lambda: errors.IdempotencyStreamed("streamed"),
        409,
        "invalid_request_error",
        "idempotency_stream",
        "invalid_request_error",
        409,
    ),
    errors.IdempotencyMismatch: Case(
        lambda: errors.IdempotencyMismatch("other body"),
        422,
        "invalid_request_error",
        "idempotency_key_mismatch",
        "invalid_request_error",
        422,
    ),
    errors.Expired: Case(
        lambda: errors.Expired("expired"),
        410,
        "invalid_request_error",
        "expired",
        "invalid_request_error",
        410,
    ),
    errors.RateLimited: Case(
        lambda: errors.RateLimited("slow down", retry_after=12),
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        429,
    ),
    errors.QuotaExceeded: Case(
        lambda: errors.QuotaExceeded("quota used up"),
        429,
        "insufficient_quota",
        "insufficient_quota",
        "rate_limit_error",
        429,
    ),
    errors.TokensNeverFit: Case(
        lambda: errors.TokensNeverFit("can never fit"),
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        429,
    ),
    errors.UpstreamRateLimited: Case(
        lambda: errors.UpstreamRateLimited("upstream 429", retry_after_header="7"),
        429,
        "rate_limit_error",
        "upstream_rate_limited",
        "rate_limit_error",
        429,
    ),
    errors.UpstreamError: Case(
        lambda: errors.UpstreamError("bad gateway"),
        502,
        "upstream_error",
        "upstream_error",
        "api_error",
        502,
    ),
    errors.UpstreamCredentialsRefused: Case(
        lambda: errors.UpstreamCredentialsRefused("vendor refused our key"),
        502,
        "upstream_error",
        "upstream_error",
        "api_error",
        502,
    ),
    errors.UpstreamAnswerBroken: Case(
        lambda: errors.UpstreamAnswerBroken("the answer broke off after it began"),
        502,
        "upstream_error",
        "upstream_error",
        "api_error",
        502,
    ),
    errors.UpstreamLost: Case(
        lambda: errors.UpstreamLost("comfyui lost it"),
        502,
        "upstream_error",
        "upstream_lost",
        "api_error",
        502,
    ),
    errors.UpstreamStreamError: Case(
        lambda: errors.UpstreamStreamError("stream broke", upstream_type="overloaded_error"),
        502,
        "upstream_error",
        "upstream_error",
        "overloaded_error",
        502,
    ),
    errors.Overloaded: Case(
        lambda: errors.Overloaded("all circuits open"),
        503,
        "upstream_unavailable",
        "upstream_unavailable",
        "overloaded_error",
        529,
    ),
    errors.UpstreamTimeout: Case(
        lambda: errors.UpstreamTimeout("timeout"),
        504,
        "upstream_timeout",
        "upstream_timeout",
        "api_error",
        504,
    ),
    errors.ServiceUnavailable: Case(
        lambda: errors.ServiceUnavailable("store down"),
        503,
        "service_unavailable",
        "service_unavailable",
        "overloaded_error",
        529,
    ),
    errors.Shed: Case(
        lambda: errors.Shed("at capacity"),
        503,
        "service_unavailable",
        "overloaded",
        "overloaded_error",
        529,
    ),
    errors.UpstreamClientError: Case(
        lambda: errors.UpstreamClientError(
            422, "bad schema", error_type="invalid_request_error", code="bad_schema"
        ),
        422,
        "invalid_request_error",
        "bad_schema",
        "invalid_request_error",
        422,
    ),
}


def _all_subclasses(cls: type[LowartError]) -> set[type[LowartError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    names = [k for k, _ in raw]
    assert len(names) == len(set(names)), f"duplicate headers: {names}"
    return {k.decode(): v.decode() for k, v in raw}


def _rendered(err: LowartError, path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, raw_headers, body = render(err, path)
    headers = _headers(raw_headers)
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    return status, headers, json.loads(body)


def test_every_error_class_has_a_case() -> None:
    assert set(CASES) == _all_subclasses(LowartError)


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_openai_shape(cls: type[LowartError]) -> None:
    case = CASES[cls]
    err = case.make()
    status, _, body = _rendered(err, OPENAI_PATH)
    assert status == case.status
    assert body == {
        "error": {"message": err.message, "type": case.type, "param": err.param, "code": case.code}
    }
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]


@pytest.mark.parametrize("path", ANTHROPIC_PATHS)
@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_anthropic_shape(cls: type[LowartError], path: str) -> None:
    case = CASES[cls]
    err = case.make()
    status, _, body = _rendered(err, path)
    assert status == case.anthropic_status
    assert body == {"type": "error", "error": {"type": case.anthropic_type, "message": err.message}}


@pytest.mark.parametrize(
    ("path", "anthropic"),
    [
        ("/v1/messages", True),
        ("/v1/messages/count_tokens", True),
        ("/v1/chat/completions", False),
        ("/v1/models", False),
        ("/admin/users", False),
        ("/", False),
    ],
)
def test_anthropic_paths(path: str, anthropic: bool) -> None:
    assert is_anthropic_path(path) is anthropic


def test_overloaded_is_503_for_openai_and_529_for_anthropic() -> None:
    err = errors.Overloaded("every model is circuit-open")
    assert render(err, OPENAI_PATH)[0] == 503
    assert render(err, "/v1/messages")[0] == 529


def test_param_is_carried() -> None:
    _, _, body = _rendered(errors.InvalidRequest("bad", param="max_tokens"), OPENAI_PATH)
    assert body["error"]["param"] == "max_tokens"
    _, _, body = _rendered(errors.ModelNotFound("gpt-9"), OPENAI_PATH)
    assert body["error"]["param"] == "model"
    assert "gpt-9" in body["error"]["message"]


def test_param_and_code_are_null_not_missing() -> None:
    _, _, body = _rendered(errors.InvalidRequest("bad"), OPENAI_PATH)
    assert body["error"]["param"] is None
    assert body["error"]["code"] is None


@pytest.mark.parametrize("path", [OPENAI_PATH, "/v1/messages"])
def test_quota_exceeded_says_do_not_retry(path: str) -> None:
    _, headers, _ = _rendered(errors.QuotaExceeded("quota used up"), path)
    assert headers["x-should-retry"] == "false"
    _, headers, _ = _rendered(errors.TokensNeverFit("can never fit"), path)
    assert headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (12.0, "12"), (59.5, "60")],
)
def test_rate_limited_retry_after_rounds_up(retry_after: float, header: str) -> None:
    _, headers, _ = _rendered(errors.RateLimited("slow", retry_after=retry_after), OPENAI_PATH)
    assert headers["retry-after"] == header
    assert "x-should-retry" not in headers  # an RPM refusal is worth retrying


def test_rate_limited_without_retry_after() -> None:
    _, headers, _ = _rendered(errors.RateLimited("slow"), OPENAI_PATH)
    assert "retry-after" not in headers


def test_rate_limited_extra_headers() -> None:
    err = errors.RateLimited(
        "slow", retry_after=3, extra_headers=[(b"x-ratelimit-reset-requests", b"3s")]
    )
    _, headers, _ = _rendered(err, OPENAI_PATH)
    assert headers["x-ratelimit-reset-requests"] == "3s"
    assert headers["retry-after"] == "3"


@pytest.mark.parametrize("value", ["7", "Wed, 21 Oct 2015 07:28:00 GMT", "0.5"])
def test_upstream_rate_limited_relays_retry_after_verbatim(value: str) -> None:
    err = errors.UpstreamRateLimited("upstream 429", retry_after_header=value)
    for path in (OPENAI_PATH, "/v1/messages"):
        status, headers, _ = _rendered(err, path)
        assert status == 429
        assert headers["retry-after"] == value


def test_upstream_rate_limited_without_header() -> None:
    _, headers, _ = _rendered(errors.UpstreamRateLimited("upstream 429"), OPENAI_PATH)
    assert "retry-after" not in headers


@pytest.mark.parametrize(
    "cls",
    [errors.UpstreamError, errors.Overloaded, errors.UpstreamTimeout],
    ids=lambda c: c.__name__,
)
def test_gateway_side_failures_say_do_not_retry(cls: type[LowartError]) -> None:
    for path in (OPENAI_PATH, "/v1/messages"):
        _, headers, _ = _rendered(cls("failed"), path)
        assert headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    "cls",
    [errors.InvalidRequest, errors.AuthError, errors.NotFound, errors.ServiceUnavailable],
    ids=lambda c: c.__name__,
)
def test_other_errors_carry_no_retry_hint(cls: type[LowartError]) -> None:
    _, headers, _ = _rendered(cls("x"), OPENAI_PATH)
    assert "x-should-retry" not in headers
    assert "retry-after" not in headers


@pytest.mark.parametrize(
    ("status", "anthropic_type"),
    [
        (400, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (404, "not_found_error"),
    ],
)
def test_upstream_client_error_keeps_the_upstream_status(status: int, anthropic_type: str) -> None:
    err = errors.UpstreamClientError(
        status, "upstream says no", error_type="invalid_request_error", code="context_length"
    )
    got_status, _, body = _rendered(err, OPENAI_PATH)
    assert got_status == status
    assert body["error"] == {
        "message": "upstream says no",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length",
    }
    got_status, _, body = _rendered(err, "/v1/messages")
    assert got_status == status
    assert body["error"]["type"] == anthropic_type


def test_upstream_client_error_keeps_a_custom_type_and_param() -> None:
    err = errors.UpstreamClientError(
        400, "nope", error_type="invalid_value", code=None, param="messages.0"
    )
    _, _, body = _rendered(err, OPENAI_PATH)
    assert body["error"] == {
        "message": "nope",
        "type": "invalid_value",
        "param": "messages.0",
        "code": None,
    }


def test_upstream_client_error_defaults_its_type() -> None:
    _, _, body = _rendered(errors.UpstreamClientError(400, "nope"), OPENAI_PATH)
    assert body["error"]["type"] == "invalid_request_error"


def test_message_with_quotes_and_unicode_stays_valid_json() -> None:
    err = errors.InvalidRequest('bad "value" \u00e9 \u2028 \n')
    _, _, body = _rendered(err, OPENAI_PATH)
    assert body["error"]["message"] == 'bad "value" \u00e9 \u2028 \n'
