"""The wire form of a fake Anthropic answer: a Messages body or its SSE events.

The stream follows the grammar ``message_start (block)* message_delta message_stop``: strict
block indexes from 0, empty skeletons in ``content_block_start``, one ``ping`` after the first
block start, a ``text_delta`` per word, tool input as ``input_json_delta`` fragments (an empty
one, then the JSON in two halves), and cumulative ``output_tokens`` in ``message_delta``. Every
event has an ``event:`` line and repeats its name in the JSON ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from lowart.formats.sse import encode_event

_Event = dict[str, object]


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A text content block."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A ``tool_use`` content block; ``input_json`` is the serialized input object."""

    id: str
    name: str
    input_json: str


Block = TextBlock | ToolUseBlock


@dataclass(frozen=True, slots=True)
class Usage:
    """The token counts an answer reports."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send: the blocks, the stop reason and the usage.

    Without ``report_usage`` the usage is all zeros and a stream's ``message_delta`` has none.
    """

    blocks: tuple[Block, ...]
    stop_reason: str
    usage: Usage
    report_usage: bool = True


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Where a stream ends early: ``cut`` drops the connection, ``error_after`` sends an error.

    Each counts the ``content_block_delta`` events sent before stopping.
    """

    cut: int | None = None
    error_after: int | None = None


def message_body(message_id: str, model: str, answer: Answer) -> bytes:
    """The non-streaming Messages response body."""
    content = [_block_json(block) for block in answer.blocks]
    message = _message(message_id, model, content, answer.stop_reason, _usage_json(answer.usage))
    return msgspec.json.encode(message)


def stream_events(
    message_id: str, model: str, answer: Answer, plan: StreamPlan
) -> tuple[list[bytes], bool]:
    """The encoded SSE events of a streamed answer, and whether the response should end cleanly.

    A cut stream stops before its ``cut + 1``-th delta (or before ``message_delta``) and is not
    ended, so the server drops the connection; an ``error_after`` one sends an ``overloaded_error``
    event at that point instead and ends the response.
    """
    events = _events(message_id, model, answer)
    complete = True
    if plan.cut is not None:
        events, complete = events[: _stop_at(events, plan.cut)], False
    elif plan.error_after is not None:
        error: _Event = {"type": "overloaded_error", "message": "Overloaded"}
        events = [*events[: _stop_at(events, plan.error_after)], {"type": "error", "error": error}]
    return [
        encode_event(msgspec.json.encode(event), str(event["type"])) for event in events
    ], complete


def _events(message_id: str, model: str, answer: Answer) -> list[_Event]:
    usage = answer.usage
    start_usage = _usage_json(Usage(usage.input_tokens, 1, *_cache(usage)))
    if not answer.report_usage:
        start_usage = _usage_json(Usage(0, 0))
    message = _message(message_id, model, [], None, start_usage)
    events: list[_Event] = [{"type": "message_start", "message": message}]
    for index, block in enumerate(answer.blocks):
        events.append(
            {"type": "content_block_start", "index": index, "content_block": _skeleton(block)}
        )
        if index == 0:
            events.append({"type": "ping"})
        events.extend(
            {"type": "content_block_delta", "index": index, "delta": delta}
            for delta in _deltas(block)
        )
        events.append({"type": "content_block_stop", "index": index})
    delta: _Event = {"type": "message_delta"}
    delta["delta"] = {"stop_reason": answer.stop_reason, "stop_sequence": None}
    if answer.report_usage:
        delta["usage"] = {"output_tokens": usage.output_tokens}
    return [*events, delta, {"type": "message_stop"}]


def _stop_at(events: list[_Event], deltas: int) -> int:
    """The index of the event before which a stream stops after ``deltas`` deltas."""
    starts = [i for i, event in enumerate(events) if event["type"] == "content_block_delta"]
    if 0 <= deltas < len(starts):
        return starts[deltas]
    return next(i for i, event in enumerate(events) if event["type"] == "message_delta")


def _deltas(block: Block) -> list[_Event]:
    if isinstance(block, TextBlock):
        pieces = block.text.split(" ")
        words = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
        return [{"type": "text_delta", "text": word} for word in words if word]
    middle = max(1, len(block.input_json) // 2)
    parts = ["", block.input_json[:middle], block.input_json[middle:]]
    return [{"type": "input_json_delta", "partial_json": part} for part in parts]


def _skeleton(block: Block) -> _Event:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": ""}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}


def _block_json(block: Block) -> _Event:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    arguments = msgspec.json.decode(block.input_json)
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": arguments}


def _message(
    message_id: str, model: str, content: list[_Event], stop_reason: str | None, usage: _Event
) -> _Event:
    message: _Event = {"id": message_id, "type": "message", "role": "assistant", "model": model}
    message |= {"content": content, "stop_reason": stop_reason, "stop_sequence": None}
    return message | {"usage": usage}


def _cache(usage: Usage) -> tuple[int, int]:
    return usage.cache_read_input_tokens, usage.cache_creation_input_tokens


def _usage_json(usage: Usage) -> _Event:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }
