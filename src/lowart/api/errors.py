"""The one place where errors become HTTP responses, in the caller's format."""

from __future__ import annotations

import msgspec

from lowart.errors import LowartError

ANTHROPIC_PATHS = ("/v1/messages",)


def is_anthropic_path(path: str) -> bool:
    """``/v1/messages`` and ``/v1/messages/count_tokens`` answer errors in Anthropic's shape."""
    return path.startswith(ANTHROPIC_PATHS)


def openai_error(err: LowartError) -> dict[str, object]:
    return {
        "error": {
            "message": err.message,
            "type": err.error_type,
            "param": err.param,
            "code": err.error_code,
        }
    }


def anthropic_error(err: LowartError) -> dict[str, object]:
    return {"type": "error", "error": {"type": err.anthropic_error_type, "message": err.message}}


def render(err: LowartError, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body for an error on ``path``."""
    anthropic = is_anthropic_path(path)
    status = err.http_status
    if anthropic and status == 503 and err.anthropic_error_type == "overloaded_error":
        status = 529
    body = msgspec.json.encode(anthropic_error(err) if anthropic else openai_error(err))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in err.headers().items()]
    return status, headers, body
