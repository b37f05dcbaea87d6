"""A whole Anthropic Message told as a stream of events (for answers that exist whole)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from lowart.formats.anthropic import anthropic_event


def _block_events(index: int, block: Mapping[str, Any]) -> list[bytes]:
    kind = block.get("type")
    start: dict[str, Any]
    delta: dict[str, Any]
    if kind == "text":
        start = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": block.get("text", "")}
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": {}}
        arguments = msgspec.json.encode(block.get("input") or {}).decode()
        delta = {"type": "input_json_delta", "partial_json": arguments}
    else:
        return []
    return [
        anthropic_event("content_block_start", {"index": index, "content_block": start}),
        anthropic_event("content_block_delta", {"index": index, "delta": delta}),
        anthropic_event("content_block_stop", {"index": index}),
    ]


def message_events(
    message: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> list[bytes]:
    """``message_start``, one block each with a single delta, ``message_delta``, ``message_stop``.

    ``extra`` fields go into ``message_start``'s message (a tool pause's session, say).
    """
    usage = message.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}  # a vendor's odd answer is no 500
    head = {k: v for k, v in message.items() if k not in ("content", "stop_reason", "usage")}
    start = {
        **head,
        **(extra or {}),
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 0},
    }
    out = [anthropic_event("message_start", {"message": start})]
    content = message.get("content")
    blocks = [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []
    for index, block in enumerate(b for b in blocks if b.get("type") in ("text", "tool_use")):
        out.extend(_block_events(index, block))
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": None}
    out.append(anthropic_event("message_delta", {"delta": delta, "usage": usage}))
    out.append(anthropic_event("message_stop", {}))
    return out
