"""Anthropic Messages wire helpers: usage, stop reasons, events, errors, tool names, ids, media.

Everything here is pure (no I/O): the wire shapes, the stop-reason table, the usage arithmetic and
the error-type mapping (docs/api.md, "Anthropic Messages", says what callers see of them).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec

from lowart.errors import InvalidRequest
from lowart.formats.openai import Usage, sane_tokens
from lowart.formats.sse import encode_event as encode_sse

MAX_TOOL_NAME: Final = 64
_NAME_HEAD: Final = 55  # 55 + "_" + 8 hex digits = 64, litellm's rule
_VALID_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NOT_NAME_CHAR: Final = re.compile(r"[^a-zA-Z0-9_-]")

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
    prompt = (
        _count(usage.get("input_tokens"))
        + cache_read
        + _count(usage.get("cache_creation_input_tokens"))
    )
    return Usage(prompt, _count(usage.get("output_tokens")), cache_read)


def usage_to_anthropic(u: Usage) -> dict[str, int]:
    """Anthropic usage from ours: ``input_tokens`` excludes the cached part."""
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens, 0),
        "cache_creation_input_tokens": 0,
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


def shorten_tool_name(name: str) -> str:
    """A name both APIs accept (``^[a-zA-Z0-9_-]{1,64}$``); valid names come back unchanged.

    Others keep their first 55 characters (invalid ones replaced by ``_``) plus ``_`` and 8 hex
    digits of the full name's sha256, so distinct names stay distinct.
    """
    if _VALID_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return _NOT_NAME_CHAR.sub("_", name)[:_NAME_HEAD] + "_" + digest


class ToolNames:
    """The tool-name mapping of one request, both ways: original ↔ shortened."""

    __slots__ = ("_original", "_short")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._short: dict[str, str] = {}
        self._original: dict[str, str] = {}
        for name in names:
            short = shorten_tool_name(name)
            self._short[name] = short
            self._original.setdefault(short, name)

    @classmethod
    def from_tools(cls, tools: object) -> ToolNames:
        """The mapping for a request's ``tools``, in OpenAI or Anthropic shape (others skipped)."""
        names: list[str] = []
        for tool in tools if isinstance(tools, list) else ():
            if not isinstance(tool, dict):
                continue
            function = tool.get("function")
            name = function.get("name") if isinstance(function, dict) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
        return cls(names)

    def short(self, name: str) -> str:
        """The name to send upstream."""
        return self._short.get(name) or shorten_tool_name(name)

    def original(self, name: str) -> str:
        """The caller's name for one the upstream used; unknown names come back unchanged."""
        return self._original.get(name, name)


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


def _get(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, dict) else None


def _tool_list(body: Mapping[str, object]) -> list[object]:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    return tools or []


def _tool_fields(name: object, description: object, param: str) -> dict[str, object]:
    if not isinstance(name, str):
        raise InvalidRequest("tools need a name", param=param)
    fields: dict[str, object] = {"name": name}
    if isinstance(description, str):
        fields["description"] = description
    return fields


def _schema(value: object) -> object:
    return value if isinstance(value, dict) else {"type": "object", "properties": {}}


def tools_to_anthropic(body: Mapping[str, object], names: ToolNames) -> dict[str, object]:
    """Anthropic ``tools``/``tool_choice`` for an OpenAI body's tools, tool_choice and
    parallel_tool_calls; names go through ``names.short``."""
    tools = _tool_list(body)
    if not tools:  # without tools, Anthropic refuses a tool_choice
        return {}
    converted = []
    for i, tool in enumerate(tools):
        function = _get(tool, "function")
        if _get(tool, "type") not in (None, "function") or not isinstance(function, dict):
            raise InvalidRequest("only function tools are supported", param=f"tools[{i}]")
        fields = _tool_fields(function.get("name"), function.get("description"), f"tools[{i}]")
        fields["name"] = names.short(str(fields["name"]))
        converted.append(fields | {"input_schema": _schema(function.get("parameters"))})
    out: dict[str, object] = {"tools": converted}
    choice = _anthropic_tool_choice(body.get("tool_choice"), names)
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _anthropic_tool_choice(choice: object, names: ToolNames) -> dict[str, object] | None:
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if choice is None:
        return None
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}
    name = _get(_get(choice, "function"), "name")
    if _get(choice, "type") == "function" and isinstance(name, str):
        return {"type": "tool", "name": names.short(name)}
    raise InvalidRequest("unsupported tool_choice", param="tool_choice")


def tools_to_openai(body: Mapping[str, object], names: ToolNames) -> dict[str, object]:
    """OpenAI ``tools``/``tool_choice``/``parallel_tool_calls`` for an Anthropic body.

    Server tools (a ``type`` other than ``custom``) have no Chat Completions equivalent.
    """
    tools: list[object] = []
    for i, tool in enumerate(_tool_list(body)):
        kind = _get(tool, "type")
        if kind not in (None, "custom"):
            raise InvalidRequest(f"server tool {kind!r} is not supported here", param=f"tools[{i}]")
        function = _tool_fields(_get(tool, "name"), _get(tool, "description"), f"tools[{i}]")
        function["name"] = names.short(str(function["name"]))
        function["parameters"] = _schema(_get(tool, "input_schema"))
        tools.append({"type": "function", "function": function})
    if not tools:
        return {}
    out: dict[str, object] = {"tools": tools}
    choice = body.get("tool_choice")
    kind, name = _get(choice, "type"), _get(choice, "name")
    simple = {"auto": "auto", "any": "required", "none": "none"}
    if isinstance(kind, str) and kind in simple:
        out["tool_choice"] = simple[kind]
    elif kind == "tool" and isinstance(name, str):
        out["tool_choice"] = {"type": "function", "function": {"name": names.short(name)}}
    elif choice is not None:
        raise InvalidRequest("unsupported tool_choice", param="tool_choice")
    if _get(choice, "disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out
