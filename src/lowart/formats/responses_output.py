"""A Responses API answer built from a chat vendor's: the whole ``response`` for a
``chat.completion``, its stream events, its usage for billing, and its output items as the next
turn's input.

Pure, no I/O: ids and times come from the caller. The streaming translator is
``ChatChunksToResponses`` (``responses_stream.py``), the events ``response_events``
(``responses_events.py``); both are importable from here.
"""

from __future__ import annotations

from typing import Any

from lowart.formats.json_values import get
from lowart.formats.openai import Usage, sane_tokens
from lowart.formats.responses_build import (
    Json,
    function_call_item,
    message_item,
    reasoning_item,
    refusal_part,
    response_object,
    status_of,
    text_part,
    usage_object,
)
from lowart.formats.responses_events import response_events
from lowart.formats.responses_items import new_id
from lowart.formats.responses_stream import ChatChunksToResponses

__all__ = [
    "ChatChunksToResponses",
    "chat_to_response",
    "response_events",
    "response_to_items",
    "usage_from_response",
]
# The output items a next turn takes back as they are (messages are rebuilt, others dropped).
KEPT_ITEMS = frozenset({"function_call", "mcp_list_tools", "mcp_call", "mcp_approval_request"})


def chat_to_response(
    completion: dict[str, Any], *, response_id: str, created_at: int, request: dict[str, Any]
) -> dict[str, Any]:
    """The ``response`` for a ``chat.completion`` (its first choice): reasoning (when the vendor
    gives ``reasoning_content``), the message, then one ``function_call`` per tool call."""
    choices = get(completion, "choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = get(choice, "message")
    status, reason = status_of(get(choice, "finish_reason"))
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[Json] = []
    reasoning = get(message, "reasoning_content") or get(message, "reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(new_id("rs"), reasoning))
    parts = _parts(message)
    if parts:
        output.append(message_item(new_id("msg"), parts, item_status))
    calls = get(message, "tool_calls")
    for call in calls if isinstance(calls, list) else ():
        output.append(_call_item(call))
    return response_object(
        request,
        response_id=response_id,
        created_at=created_at,
        output=output,
        status=status,
        usage=usage_object(get(completion, "usage")),
        incomplete_reason=reason,
    )


def _parts(message: object) -> list[Json]:
    """The message's text (a string or text parts) and refusal as content parts."""
    content = get(message, "content")
    if isinstance(content, list):
        content = "".join(text for p in content if isinstance(text := get(p, "text"), str))
    parts = [text_part(content)] if isinstance(content, str) and content else []
    refusal = get(message, "refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(refusal_part(refusal))
    return parts


def _call_item(call: object) -> Json:
    call_id = get(call, "id")
    function = get(call, "function")
    name, arguments = get(function, "name"), get(function, "arguments")
    return function_call_item(
        new_id("fc"),
        call_id if isinstance(call_id, str) else new_id("call"),
        name if isinstance(name, str) else "",
        arguments if isinstance(arguments, str) else "",
    )


def usage_from_response(response: Any) -> Usage | None:
    """The gateway's usage for a Responses ``usage`` (or a response carrying one); None when
    there is none or its counts are not numbers."""
    usage = get(response, "usage") if get(response, "input_tokens") is None else response
    prompt = sane_tokens(get(usage, "input_tokens"))
    completion = sane_tokens(get(usage, "output_tokens"))
    if prompt is None or completion is None:
        return None
    cached = sane_tokens(get(get(usage, "input_tokens_details"), "cached_tokens")) or 0
    return Usage(prompt, completion, min(cached, prompt))


def response_to_items(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored response's output as the next turn's input items: messages as assistant
    messages, calls and ``mcp_*`` items as they are, reasoning (and anything else) dropped."""
    items: list[dict[str, Any]] = []
    output = get(response, "output")
    for item in output if isinstance(output, list) else ():
        kind = get(item, "type")
        if kind == "message":
            content = [p for p in item.get("content") or () if get(p, "type") in _TEXTS]
            items.append({**item, "role": "assistant", "content": content})
        elif kind in KEPT_ITEMS:
            items.append(item)
    return items


_TEXTS = frozenset({"output_text", "refusal"})
