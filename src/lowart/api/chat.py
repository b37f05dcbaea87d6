"""The parsers of the chat operations: validation of a chat or Messages request's
gateway-relevant fields (the rest passes through)."""

from __future__ import annotations

import math
from typing import Any

from lowart.errors import InvalidRequest
from lowart.pipeline.operation import OperationFields

MAX_TOKENS_CAP = 10_000_000
MAX_N = 128
MAX_SCHEMA_DEPTH = 64  # nesting of tool schemas and response formats (docs/reliability.md, B3)
# OpenAI's fields that admission and billing read: Anthropic has neither (docs/api.md, "Quotas").
_NOT_ANTHROPIC = ("n", "max_completion_tokens")


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean.", param=name)
    return value


def _positive_int(body: dict[str, Any], name: str, cap: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= cap:
        raise InvalidRequest(f"'{name}' must be an integer from 1 to {cap}.", param=name)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidRequest(f"'{name}' must be a number from {low:g} to {high:g}.", param=name)


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    return model


def _messages(body: dict[str, Any], roles: frozenset[str] | None = None) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' is required and must be a non-empty array.", param="messages"
        )
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or (roles is not None and role not in roles):
            allowed = f" ({', '.join(sorted(roles))})" if roles else ""
            raise InvalidRequest(
                f"Each message must be an object with a 'role'{allowed}.", param="messages"
            )


def _list(body: dict[str, Any], name: str) -> None:
    if body.get(name) is not None and not isinstance(body[name], list):
        raise InvalidRequest(f"'{name}' must be an array.", param=name)


def _shallow(body: dict[str, Any], name: str) -> None:
    """Refuse a schema nested deeper than ``MAX_SCHEMA_DEPTH``: vendors and validators recurse."""
    stack = [(body.get(name), 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_SCHEMA_DEPTH:
            raise InvalidRequest(
                f"'{name}' is nested deeper than {MAX_SCHEMA_DEPTH} levels.", param=name
            )
        stack.extend((child, depth + 1) for child in children)


def messages_fields(body: dict[str, Any]) -> OperationFields:
    """Validate an Anthropic Messages request's gateway-relevant fields."""
    model = _model(body)
    for name in _NOT_ANTHROPIC:  # dropped upstream anyway; admission must not read them
        body.pop(name, None)
    _messages(body, frozenset({"user", "assistant"}))
    if body.get("max_tokens") is None:
        raise InvalidRequest("'max_tokens' is required.", param="max_tokens")
    value = body["max_tokens"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TOKENS_CAP:
        raise InvalidRequest(
            f"'max_tokens' must be an integer from 0 to {MAX_TOKENS_CAP}.", param="max_tokens"
        )
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _list(body, "tools")
    _shallow(body, "tools")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest(
            "'system' must be a string or an array of text blocks.", param="system"
        )
    stream = _bool(body, "stream")
    return OperationFields(
        model=model, stream=stream, wants_usage=stream, is_async=_bool(body, "async")
    )


# The optional fields ``chat_fields`` checks: a body with none of them skips those checks.
_CHAT_OPTIONAL = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "stream_options",
        "tools",
        "response_format",
        "async",
    }
)


def chat_fields(body: dict[str, Any]) -> OperationFields:
    """Validate the fields the gateway acts on; 400 for anything out of shape."""
    model = _model(body)
    _messages(body)
    stream = _bool(body, "stream")
    if _CHAT_OPTIONAL.isdisjoint(body):
        return OperationFields(model=model, stream=stream, wants_usage=False, is_async=False)
    _positive_int(body, "max_tokens", MAX_TOKENS_CAP)
    _positive_int(body, "max_completion_tokens", MAX_TOKENS_CAP)
    _positive_int(body, "n", MAX_N)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    options = body.get("stream_options")
    wants_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        if not stream:
            raise InvalidRequest(
                "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
            )
        wants_usage = _bool(options, "include_usage")
    _list(body, "tools")
    _shallow(body, "tools")
    _shallow(body, "response_format")
    return OperationFields(
        model=model, stream=stream, wants_usage=wants_usage, is_async=_bool(body, "async")
    )
