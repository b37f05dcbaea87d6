"""Streams translated both ways: Anthropic events ⇄ OpenAI chunks, no I/O.

The caller parses the upstream with ``SSEParser``, feeds events in order and sends what returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import msgspec

from lowart.errors import UpstreamError
from lowart.formats import anthropic
from lowart.formats.anthropic_tools import ToolNames
from lowart.formats.json_values import get
from lowart.formats.openai import Usage, error_body
from lowart.formats.sse import DONE, SSEEvent
from lowart.formats.sse import encode_event as encode_sse
from lowart.formats.translate_response import openai_usage, usage_from_openai

PING_COMMENT: Final = b": ping\n\n"
MALFORMED: Final = "malformed upstream stream"
_BLOCK_EVENTS: Final = frozenset(f"content_block_{step}" for step in ("start", "delta", "stop"))
_BODY_EVENTS: Final = _BLOCK_EVENTS | {"message_delta", "message_stop"}
_OBJECT: Final = msgspec.json.Decoder(dict[str, object])


def _decode(data: bytes) -> dict[str, object]:
    try:
        return _OBJECT.decode(data)
    except msgspec.DecodeError as exc:  # also raised for JSON that is not an object
        raise UpstreamError(MALFORMED) from exc


def _index(data: dict[str, object]) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else -1


def _text(value: object) -> str:
    """A string field's value, or ``""`` for anything else."""
    return value if isinstance(value, str) else ""


class _Translator:
    """What both translators report besides their output: whether it ended, and how."""

    def __init__(self) -> None:
        self._done = False
        self._error: tuple[str, str] | None = None

    @property
    def done(self) -> bool:
        """Whether the output stream is complete (for OpenAIToAnthropic also after an error)."""
        return self._done

    @property
    def error(self) -> tuple[str, str] | None:
        """The Anthropic ``(type, message)`` of an upstream error, if one arrived."""
        return self._error


class AnthropicToOpenAI(_Translator):
    """Anthropic events in, OpenAI ``chat.completion.chunk`` SSE bytes out.

    ``message_stop`` yields the finish chunk, the usage chunk (with ``include_usage``) and
    ``data: [DONE]``. ``ping`` becomes an SSE comment. An upstream ``error`` event becomes an
    OpenAI error chunk (no ``[DONE]``) and sets ``error`` to its Anthropic ``(type, message)``.
    Data that is not a JSON object raises ``UpstreamError``.
    """

    def __init__(
        self, *, include_usage: bool, created: int, names: ToolNames | None = None
    ) -> None:
        super().__init__()
        self._include_usage = include_usage
        self._created = created
        self._names = names or ToolNames()
        self._head = b""  # every chunk's id, object, created and model, set by message_start
        self._tail = b"}]" + (b',"usage":null}' if include_usage else b"}")
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool index
        self._inputs: dict[int, object] = {}  # a whole input in a start, sent unless deltas come
        self._usage: dict[str, object] | None = None  # None until message_start
        self._stop: str | None = None

    @property
    def usage(self) -> Usage | None:
        """Usage so far: message_start's, with message_delta's counts replacing it."""
        return None if self._usage is None else anthropic.usage_from_anthropic(self._usage)

    def feed(self, event: SSEEvent) -> bytes:
        """The OpenAI SSE bytes for one upstream event (possibly none)."""
        if self._done or self._error is not None:
            return b""
        if event.event == "ping":
            return PING_COMMENT
        data = _decode(event.data)
        kind = data.get("type")
        return self._dispatch(kind if isinstance(kind, str) else event.event, data)

    def _dispatch(self, kind: str | None, data: dict[str, object]) -> bytes:
        if kind == "message_start":
            return self._on_start(data)
        if kind == "error":
            return self._on_error(data)
        if kind not in _BODY_EVENTS:  # a ping, or an event type newer than this code
            return PING_COMMENT if kind == "ping" else b""
        if self._usage is None:
            raise UpstreamError(f"{MALFORMED}: {kind} before message_start")
        return self._on_body(kind, data)

    def _on_body(self, kind: str, data: dict[str, object]) -> bytes:
        match kind:
            case "content_block_start":
                return self._on_block_start(data)
            case "content_block_delta":
                return self._on_block_delta(data)
            case "content_block_stop":
                return self._on_block_stop(data)
            case "message_delta":
                return self._on_message_delta(data)
        return self._on_message_stop()

    def _chunk(self, delta: Mapping[str, object], finish: str | None = None) -> bytes:
        finish_json = msgspec.json.encode(finish)
        body = self._head + b'"choices":[{"index":0,"delta":' + msgspec.json.encode(delta)
        return encode_sse(body + b',"logprobs":null,"finish_reason":' + finish_json + self._tail)

    def _on_start(self, data: dict[str, object]) -> bytes:
        if self._usage is not None:
            raise UpstreamError(f"{MALFORMED}: a second message_start")
        message = data.get("message")
        usage = get(message, "usage")
        chunk_id = "chatcmpl-" + (_text(get(message, "id")) or anthropic.new_id(""))
        model = msgspec.json.encode(_text(get(message, "model")))
        self._usage = dict(usage) if isinstance(usage, dict) else {}
        fields = (msgspec.json.encode(chunk_id), self._created, model)
        self._head = b'{"id":%s,"object":"chat.completion.chunk","created":%d,"model":%s,' % fields
        return self._chunk({"role": "assistant", "content": ""})

    def _on_block_start(self, data: dict[str, object]) -> bytes:
        index, block = data.get("index"), data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            raise UpstreamError(f"{MALFORMED}: a content_block_start without a block")
        if block.get("type") != "tool_use":
            return b""
        tool = self._tools[index] = len(self._tools)
        self._inputs[index] = block.get("input")
        call_id = _text(block.get("id")) or anthropic.new_id("call_")
        function = {"name": self._names.original(_text(block.get("name"))), "arguments": ""}
        call = {"index": tool, "id": call_id, "type": "function", "function": function}
        return self._chunk({"tool_calls": [call]})

    def _on_block_delta(self, data: dict[str, object]) -> bytes:
        index, delta = _index(data), data.get("delta")
        kind = get(delta, "type")
        if kind == "text_delta":
            text = _text(get(delta, "text"))
            return self._chunk({"content": text}) if text else b""
        partial = _text(get(delta, "partial_json"))
        if kind != "input_json_delta" or index not in self._tools or not partial:
            return b""  # thinking, signatures and citations have no OpenAI field
        self._inputs.pop(index, None)
        return self._arguments(self._tools[index], partial)

    def _on_block_stop(self, data: dict[str, object]) -> bytes:
        index = _index(data)
        start = self._inputs.pop(index, None)
        if not start or not isinstance(start, dict):
            return b""
        return self._arguments(self._tools[index], msgspec.json.encode(start).decode())

    def _arguments(self, tool: int, arguments: str) -> bytes:
        call = {"index": tool, "function": {"arguments": arguments}}
        return self._chunk({"tool_calls": [call]})

    def _on_message_delta(self, data: dict[str, object]) -> bytes:
        stop = get(data.get("delta"), "stop_reason")
        if isinstance(stop, str):
            self._stop = stop
        usage = data.get("usage")
        if isinstance(usage, dict) and self._usage is not None:  # cumulative: replace
            self._usage.update((key, value) for key, value in usage.items() if value is not None)
        return b""

    def _on_message_stop(self) -> bytes:
        self._done = True
        out = self._chunk({}, anthropic.stop_to_finish(self._stop, bool(self._tools)))
        if self._include_usage:
            usage = msgspec.json.encode(openai_usage(self.usage or Usage(0, 0)))
            out += encode_sse(self._head + b'"choices":[],"usage":' + usage + b"}")
        return out + DONE

    def _on_error(self, data: dict[str, object]) -> bytes:
        error = data.get("error")
        kind = _text(get(error, "type")) or "api_error"
        message = _text(get(error, "message")) or "upstream error"
        self._error = (kind, message)
        openai_type, code = anthropic.openai_error_type_for(kind)
        return encode_sse(error_body(message, openai_type, code))


@dataclass(slots=True)
class _Call:
    """One OpenAI tool call: its arguments so far and, once emitted, its block index."""

    id: str
    name: str
    parts: list[str] = field(default_factory=list)
    block: int | None = None

    def complete(self) -> bool:
        """Whether the arguments so far are one whole JSON value."""
        try:
            msgspec.json.decode("".join(self.parts))
        except msgspec.DecodeError:
            return False
        return True


class OpenAIToAnthropic(_Translator):
    """OpenAI chunk payloads in, Anthropic Messages SSE events out.

    Blocks get indexes 0, 1, ... in start order, open with empty skeletons and never interleave;
    within a chunk, thinking comes before text and text before tool_use. ``message_delta`` waits
    for ``finish()`` (called on ``[DONE]`` or by the caller at EOF) so it carries the usage.
    Tool calls stream live while they arrive one after another. When a call starts while the open
    one's arguments are not yet whole JSON, the stream may interleave them, so every later call
    is buffered and emitted whole at finish while the open one keeps streaming; a fragment for a
    block already closed raises ``UpstreamError`` rather than corrupt that tool's input.
    """

    def __init__(
        self, *, model: str, names: ToolNames | None = None, message_id: str | None = None
    ) -> None:
        super().__init__()
        self._model = model
        self._names = names or ToolNames()
        self._id = message_id or anthropic.new_id("msg_")
        self._started = False
        self._next = 0  # the next block index
        self._open: tuple[str, int] | None = None  # (kind, index) of the open block
        self._open_call: int | None = None  # the OpenAI tool index of an open tool block
        self._calls: dict[int, _Call] = {}
        self._buffered = False
        self._finish: str | None = None
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The upstream's last reported usage."""
        return self._usage

    def feed(self, data: bytes) -> bytes:
        """The Anthropic events for one upstream ``data`` payload, ``[DONE]`` included."""
        if self._done:
            return b""
        if data.startswith(b"[DONE]"):
            return self.finish()
        chunk = _decode(data)
        if chunk.get("error"):
            return self._on_error(chunk["error"])
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if isinstance(choice, dict):
            out += self._on_choice(choice)
        return out

    def finish(self) -> bytes:
        """Close the open block, emit buffered tool calls, message_delta and message_stop."""
        if self._done:
            return b""
        out = self._start() + self._close()
        for key, call in sorted(self._calls.items()):
            if call.block is None:
                out += self._open_tool(key, call)
        out += self._close()
        stop = anthropic.finish_to_stop(self._finish, bool(self._calls))
        delta = {"stop_reason": stop, "stop_sequence": None}
        usage = anthropic.usage_to_anthropic(self._usage or Usage(0, 0))
        out += anthropic.anthropic_event("message_delta", {"delta": delta, "usage": usage})
        self._done = True
        return out + anthropic.anthropic_event("message_stop", {})

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, object] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
        }
        message |= {"content": [], "stop_reason": None, "stop_sequence": None}
        message["usage"] = {"input_tokens": 0, "output_tokens": 0}
        return anthropic.anthropic_event("message_start", {"message": message})

    def _on_choice(self, choice: dict[str, object]) -> bytes:
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        reasoning = _text(delta.get("reasoning_content")) or _text(delta.get("reasoning"))
        out = self._stream_text("thinking", reasoning)
        text = _text(delta.get("content")) or _text(delta.get("refusal"))
        out += self._stream_text("text", text)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict):
                out += self._tool_fragment(position, call)
        finish = choice.get("finish_reason")  # after the content of the same chunk
        if isinstance(finish, str) and finish:
            self._finish = finish
        return out

    def _stream_text(self, kind: str, text: str) -> bytes:
        """A thinking or text delta, opening its block first; empty text opens nothing."""
        if not text:
            return b""
        out = b""
        if self._open is None or self._open[0] != kind:
            skeleton = {"type": kind, kind: ""} | ({"signature": ""} if kind == "thinking" else {})
            out = self._close() + self._open_block(kind, skeleton)
        delta = {"type": f"{kind}_delta", kind: text}
        index = self._next - 1  # the open block is always the last one opened
        event = {"index": index, "delta": delta}
        return out + anthropic.anthropic_event("content_block_delta", event)

    def _open_block(self, kind: str, block: Mapping[str, object]) -> bytes:
        index = self._next
        self._next += 1
        self._open = (kind, index)
        return anthropic.anthropic_event(
            "content_block_start", {"index": index, "content_block": block}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = self._open_call = None
        return anthropic.anthropic_event("content_block_stop", {"index": index})

    def _tool_fragment(self, position: int, fragment: dict[str, object]) -> bytes:
        key = fragment.get("index")
        key = key if isinstance(key, int) else position
        function = fragment.get("function")
        out = b""
        call = self._calls.get(key)
        if call is None:
            call_id, name = _text(fragment.get("id")), _text(get(function, "name"))
            call = self._calls[key] = _Call(anthropic.clean_id(call_id), self._names.original(name))
            out = self._begin(key, call)
        arguments = _text(get(function, "arguments"))
        return out + self._arguments(key, call, arguments) if arguments else out

    def _begin(self, key: int, call: _Call) -> bytes:
        """Stream a new call live, unless the open call may still be receiving arguments."""
        if self._open_call is not None and not self._calls[self._open_call].complete():
            self._buffered = True
        return b"" if self._buffered else self._open_tool(key, call)

    def _open_tool(self, key: int, call: _Call) -> bytes:
        out = self._close()
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        out += self._open_block("tool_use", block)
        call.block, self._open_call = self._next - 1, key
        return out + self._json_delta(call.block, "".join(call.parts)) if call.parts else out

    def _arguments(self, key: int, call: _Call, arguments: str) -> bytes:
        call.parts.append(arguments)
        if call.block is None:
            return b""  # buffered: emitted whole at finish
        if self._open_call == key:
            return self._json_delta(call.block, arguments)
        if arguments.strip():
            raise UpstreamError(f"{MALFORMED}: tool-call arguments after their block closed")
        return b""

    def _json_delta(self, index: int, partial: str) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": partial}
        return anthropic.anthropic_event("content_block_delta", {"index": index, "delta": delta})

    def _on_error(self, error: object) -> bytes:
        code = get(error, "code")
        kind = anthropic.anthropic_type_for_openai(
            _text(get(error, "type")) or None, _text(code) or None
        )
        message = _text(get(error, "message")) if isinstance(error, dict) else _text(error)
        message = message or "upstream error"
        self._error = (kind, message)
        self._done = True
        return anthropic.error_event(kind, message)
