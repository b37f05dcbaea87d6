"""Anthropic Messages wire helpers: usage, stop reasons, events, errors, ids, media (tool names
and definitions are in ``anthropic_tools.py``).

Everything here is pure (no I/O): the wire shapes, the stop-reason table, the usage arithmetic and
the error-type mapping (docs/api.md, "Anthropic Messages", says what callers see of them).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from typing import Final

import msgspec

from lowart.errors import InvalidRequest
from lowart.formats.openai import Usage, sane_tokens
from lowart.formats.sse import encode_event as encode_sse

_FINISH_BY_STOP: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_BY_FINISH: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_OPENAI_ERROR_BY_ANTHROPIC: Final[dict[str, tuple[str, str | None]]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("permission_error", None),
    "not_found_error": ("invalid_request_error", "model_not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}
_ANTHROPIC_TYPE_BY_STATUS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_TYPE_BY_OPENAI: Final = {
    "invalid_api_key": "authentication_error",
    "model_not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
    "upstream_unavailable": "overloaded_error",
    "service_unavailable": "overloaded_error",
    "overloaded_error": "overloaded_error",
    "upstream_timeout": "timeout_error",
}


def _count(value: object) -> int:
    """A token count from a vendor field: non-numbers are 0, negatives clamp to 0."""
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    return sane_tokens(value) or 0


def usage_from_anthropic(usage: Mapping[str, object]) -> Usage:
    """OpenAI-style usage from Anthropic's: the prompt is input plus both cache counts."""
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + cache_read + cache_write
    return Usage(prompt, _count(usage.get("output_tokens")), cache_read, cache_write)


def usage_to_anthropic(u: Usage) -> dict[str, int]:
    """Anthropic usage from ours: ``input_tokens`` excludes the cache's reads and writes."""
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens - u.cache_write_tokens, 0),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.completion_tokens,
    }


def stop_to_finish(stop_reason: str | None, has_tool_use: bool) -> str:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason``.

    Tool use present wins whatever the reason; ``tool_use`` without any tool_use block becomes
    ``stop``, since an OpenAI client would look for tool calls that are not there.
    """
    if has_tool_use:
        return "tool_calls"
    finish = _FINISH_BY_STOP.get(stop_reason or "", "stop")
    return "stop" if finish == "tool_calls" else finish


def finish_to_stop(finish_reason: str | None, has_tool_use: bool) -> str:
    """Anthropic ``stop_reason`` for an OpenAI ``finish_reason``, the mirror rules."""
    if has_tool_use:
        return "tool_use"
    stop = _STOP_BY_FINISH.get(finish_reason or "", "end_turn")
    return "end_turn" if stop == "tool_use" else stop


def anthropic_event(name: str, payload: Mapping[str, object]) -> bytes:
    """One Anthropic SSE event: ``event: <name>`` and JSON data whose ``type`` repeats the name."""
    body: dict[str, object] = {"type": name}
    body.update((key, value) for key, value in payload.items() if key != "type")
    return encode_sse(msgspec.json.encode(body), event=name)


def error_payload(error_type: str, message: str) -> dict[str, object]:
    """A whole Anthropic error body: ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_event(error_type: str, message: str) -> bytes:
    """An in-stream Anthropic ``event: error``."""
    return anthropic_event("error", error_payload(error_type, message))


def openai_error_type_for(anthropic_type: str) -> tuple[str, str | None]:
    """OpenAI ``(type, code)`` for an Anthropic ``error.type``; unknown → server_error."""
    return _OPENAI_ERROR_BY_ANTHROPIC.get(anthropic_type, ("server_error", None))


def anthropic_type_for_status(status: int) -> str:
    """Anthropic ``error.type`` for an HTTP status; other 4xx are invalid requests."""
    known = _ANTHROPIC_TYPE_BY_STATUS.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_type_for_openai(error_type: str | None, code: str | None) -> str:
    """Anthropic ``error.type`` for an OpenAI error's type and code (the code is more precise)."""
    for key in (code, error_type):
        if key and key in _ANTHROPIC_TYPE_BY_OPENAI:
            return _ANTHROPIC_TYPE_BY_OPENAI[key]
    return "api_error"


_NOT_ID_CHAR: Final = re.compile(r"[^A-Za-z0-9_-]")


def new_id(prefix: str) -> str:
    """A fresh id such as ``toolu_<24 hex>`` or ``msg_<24 hex>``."""
    return prefix + secrets.token_hex(12)


def clean_id(value: str) -> str:
    """An id Anthropic accepts: other characters become ``_``; an empty id gets a new one."""
    return _NOT_ID_CHAR.sub("_", value) or new_id("toolu_")


def tool_input(arguments: object) -> dict[str, object]:
    """A ``tool_use.input`` object from OpenAI ``function.arguments``: never a string.

    Empty arguments give ``{}``; JSON that is not an object is wrapped as ``{"value": ...}`` and
    text that is not JSON as ``{"raw": "<text>"}``, so nothing the model wrote is lost.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value: object = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {"raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URI: Final = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)


def parse_data_uri(uri: str, param: str) -> tuple[str, str]:
    """(lower-case media type, base64 data) of a base64 ``data:`` URI; others are refused."""
    match = _DATA_URI.fullmatch(uri)
    if match is None or ";base64" not in match.group(2).lower():
        raise InvalidRequest("data URIs must be base64-encoded", param=param)
    return match.group(1).strip().lower(), match.group(3)


def image_block(url: str, param: str) -> dict[str, object]:
    """An image block for an OpenAI ``image_url``: a base64 data URI or an http(s) URL."""
    if url[:5].lower() == "data:":
        media_type, data = parse_data_uri(url, param)
        media_type = "image/jpeg" if media_type == "image/jpg" else media_type
        if media_type not in IMAGE_MEDIA_TYPES:
            allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
            raise InvalidRequest(f"image type {media_type!r} is not one of {allowed}", param=param)
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.lower().startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("image_url must be an http(s) URL or a base64 data URI", param=param)


def document_block(file_data: str, param: str) -> dict[str, object]:
    """A PDF document block for an OpenAI ``file.file_data`` data URI."""
    media_type, data = parse_data_uri(file_data, param)
    if media_type != "application/pdf":
        raise InvalidRequest(f"file type {media_type!r} is not supported: only PDF", param=param)
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def openai_part(block: Mapping[str, object], param: str) -> dict[str, object]:
    """The OpenAI user content part for an Anthropic text, image or document block."""
    kind, source = block.get("type"), block.get("source")
    source = source if isinstance(source, dict) else {}
    if kind == "text" and isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    if kind == "image" and source.get("type") == "base64":
        media_type = _source_text(source, "media_type", param)
        url = f"data:{media_type};base64,{_source_text(source, 'data', param)}"
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "image" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    if kind == "document" and source.get("type") == "text":
        return {"type": "text", "text": _source_text(source, "data", param)}
    if kind == "document" and source.get("media_type") == "application/pdf":
        title = block.get("title")
        data = f"data:application/pdf;base64,{_source_text(source, 'data', param)}"
        name = title if isinstance(title, str) and title else "document.pdf"
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    raise InvalidRequest(f"unsupported content block type {kind!r}", param=param)


def _source_text(source: Mapping[str, object], key: str, param: str) -> str:
    """A string field of a block's ``source``: anything else is refused, not pasted as repr."""
    value = source.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"source.{key} must be a string", param=param)
    return value
