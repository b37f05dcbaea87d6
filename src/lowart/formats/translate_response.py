"""Whole (non-streaming) responses translated both ways: Anthropic Message ⇄ chat.completion.

Pure code: the caller passes in what would otherwise need a clock.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from lowart.errors import UpstreamError
from lowart.formats.anthropic import (
    clean_id,
    finish_to_stop,
    new_id,
    stop_to_finish,
    tool_input,
    usage_from_anthropic,
    usage_to_anthropic,
)
from lowart.formats.anthropic_tools import ToolNames
from lowart.formats.openai import Usage, sane_tokens

Body = Mapping[str, object]
Block = dict[str, object]


def openai_usage(u: Usage) -> dict[str, object]:
    """An OpenAI ``usage`` object; ``cached_tokens`` is a subset of ``prompt_tokens``."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def usage_from_openai(usage: object) -> Usage:
    """Our Usage from an OpenAI ``usage`` object; missing or invalid counts are 0."""
    fields = usage if isinstance(usage, dict) else {}
    details = fields.get("prompt_tokens_details")
    prompt = sane_tokens(fields.get("prompt_tokens")) or 0
    cached = sane_tokens(details.get("cached_tokens") if isinstance(details, dict) else 0) or 0
    return Usage(prompt, sane_tokens(fields.get("completion_tokens")) or 0, min(cached, prompt))


def anthropic_to_openai_response(
    message: Body, *, created: int, names: ToolNames | None = None
) -> dict[str, object]:
    """A ``chat.completion`` for an Anthropic Message.

    Text blocks are joined into ``content`` (null when there are none); each tool_use becomes a
    tool call with its original name; thinking blocks are dropped.
    """
    names = names or ToolNames()
    blocks = [b for b in _items(message.get("content")) if isinstance(b, dict)]
    texts = [b.get("text") for b in blocks if b.get("type") == "text"]
    calls = [_tool_call(b, names) for b in blocks if b.get("type") == "tool_use"]
    reply: Block = {"role": "assistant", "content": None, "refusal": None}
    if texts:
        reply["content"] = "".join(text for text in texts if isinstance(text, str))
    if calls:
        reply["tool_calls"] = calls
    stop = message.get("stop_reason")
    finish = stop_to_finish(stop if isinstance(stop, str) else None, bool(calls))
    usage = message.get("usage")
    msg_id, model = message.get("id"), message.get("model")
    return {
        "id": "chatcmpl-" + (msg_id if isinstance(msg_id, str) else new_id("")),
        "object": "chat.completion",
        "created": created,
        "model": model if isinstance(model, str) else "",
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage(usage_from_anthropic(usage if isinstance(usage, dict) else {})),
    }


def _items(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _tool_call(block: Body, names: ToolNames) -> Block:
    call_id, name = block.get("id"), block.get("name")
    function = {
        "name": names.original(name if isinstance(name, str) else ""),
        "arguments": msgspec.json.encode(block.get("input") or {}).decode(),
    }
    call_id = call_id if isinstance(call_id, str) else new_id("call_")
    return {"id": call_id, "type": "function", "function": function}


def openai_to_anthropic_response(
    completion: Body, *, names: ToolNames | None = None, message_id: str | None = None
) -> dict[str, object]:
    """An Anthropic Message for a ``chat.completion``: thinking, then text, then tool_use blocks.

    ``reasoning_content`` becomes a thinking block (with an empty signature); a refusal with no
    content becomes the text. ``stop_sequence`` is null: OpenAI does not say which one matched.
    """
    names = names or ToolNames()
    choices = _items(completion.get("choices"))
    choice = choices[0] if choices and isinstance(choices[0], dict) else None
    if choice is None:
        raise UpstreamError("upstream completion has no choices")
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    calls = [c for c in _items(message.get("tool_calls")) if isinstance(c, dict)]
    content = _thinking(message) + _text(message) + [_tool_use(call, names) for call in calls]
    finish = choice.get("finish_reason")
    model = completion.get("model")
    return {
        "id": message_id or new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model if isinstance(model, str) else "",
        "content": content,
        "stop_reason": finish_to_stop(finish if isinstance(finish, str) else None, bool(calls)),
        "stop_sequence": None,
        "usage": usage_to_anthropic(usage_from_openai(completion.get("usage"))),
    }


def _thinking(message: Body) -> list[Block]:
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def _text(message: Body) -> list[Block]:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    refusal = message.get("refusal")
    text = content if isinstance(content, str) and content else refusal
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _tool_use(call: Body, names: ToolNames) -> Block:
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    call_id, name = call.get("id"), function.get("name")
    return {
        "type": "tool_use",
        "id": clean_id(call_id if isinstance(call_id, str) else ""),
        "name": names.original(name if isinstance(name, str) else ""),
        "input": tool_input(function.get("arguments")),
    }
