"""A chat completion stream told as a Responses API stream, chunk by chunk: text, refusal,
reasoning and function-call argument deltas are relayed as they come, each output item opened
when its first delta arrives and closed when another kind of item starts or the stream ends.

Pure, no I/O: the caller feeds parsed ``chat.completion.chunk`` objects (choice 0) and sends
the bytes it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lowart.errors import UpstreamError
from lowart.formats.json_values import get
from lowart.formats.responses_build import (
    Json,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    status_of,
    usage_object,
)
from lowart.formats.responses_events import PART_EVENTS, EventWriter, added_form
from lowart.formats.responses_items import new_id

UNFINISHED = "The upstream stream ended without finishing its answer."


@dataclass(slots=True)
class _Item:
    """An output item being streamed: its parts' kinds and text pieces, or a call's pieces."""

    kind: str  # message, reasoning or function_call
    id: str
    index: int
    parts: list[tuple[str, list[str]]] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    status: str = "in_progress"

    def built(self) -> Json:
        """The item as the response lists it."""
        if self.kind == "function_call":
            args = "".join(self.arguments)
            return function_call_item(self.id, self.call_id, self.name, args, self.status)
        if self.kind == "reasoning":
            text = "".join("".join(pieces) for _, pieces in self.parts)
            return reasoning_item(self.id, text, self.status)
        return message_item(self.id, [_part(kind, p) for kind, p in self.parts], self.status)


def _part(kind: str, pieces: list[str]) -> Json:
    if kind == "refusal":
        return {"type": "refusal", "refusal": "".join(pieces)}
    return {"type": "output_text", "text": "".join(pieces), "annotations": [], "logprobs": []}


class ChatChunksToResponses:
    """Turns the chunks of one chat completion stream into the Responses events of one
    response; ``finish`` closes it once the upstream gave a finish reason, ``fail`` when the
    upstream broke off."""

    def __init__(self, *, response_id: str, created_at: int, request: dict[str, Any]) -> None:
        self._response_id = response_id
        self._created_at = created_at
        self._request = request
        self._writer = EventWriter()
        self._items: list[_Item] = []
        self._open: _Item | None = None  # the message or reasoning item deltas go to
        self._calls: dict[object, _Item] = {}  # by the chunk's tool call index
        self._finish: str | None = None
        self._usage: object = None
        self._error: Json | None = None  # set by fail()
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the finish was seen and ``finish()`` emitted the closing events."""
        return self._done

    @property
    def text(self) -> str:
        """The output text generated so far."""
        return "".join(
            "".join(pieces)
            for item in self._items
            if item.kind == "message"
            for kind, pieces in item.parts
            if kind == "output_text"
        )

    @property
    def response(self) -> dict[str, Any]:
        """The response as it stands: the final one after ``finish()``, else in progress."""
        status, reason = status_of(self._finish) if self._done else ("in_progress", None)
        return response_object(
            self._request,
            response_id=self._response_id,
            created_at=self._created_at,
            output=[item.built() for item in self._items],
            status="failed" if self._error else status,
            usage=usage_object(self._usage),
            incomplete_reason=None if self._error else reason,
            error=self._error,
        )

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events of one chunk (the first also opens the response)."""
        self._start()
        if isinstance(get(chunk, "usage"), dict):
            self._usage = chunk["usage"]
        choices = get(chunk, "choices")
        first = (
            (c for c in choices if get(c, "index") in (0, None))
            if isinstance(choices, list)
            else ()
        )
        choice = next(iter(first), None)
        delta = get(choice, "delta")
        if isinstance(delta, dict):
            self._delta(delta)
        finish = get(choice, "finish_reason")
        if isinstance(finish, str):
            self._finish = finish
        return b"".join(self._writer.take())

    def finish(self) -> bytes:
        """The closing events: every open item done, then ``response.completed`` (or
        ``response.incomplete`` when the upstream stopped on its length limit)."""
        if self._finish is None:
            raise UpstreamError(UNFINISHED)
        self._start()
        status, _ = status_of(self._finish)
        item_status = "incomplete" if status == "incomplete" else "completed"
        for item in self._items:
            if item.status == "in_progress":
                self._close(item, item_status)
        self._done = True
        self._writer.closing(self.response)
        return b"".join(self._writer.take())

    def fail(self, message: str, code: str = "server_error") -> bytes:
        """The events ending a stream the upstream broke: open items end ``incomplete``, then
        ``response.failed`` carrying the error and the output so far."""
        self._start()
        for item in self._items:
            if item.status == "in_progress":
                self._close(item, "incomplete")
        self._error = {"code": code, "message": message}
        self._writer.closing(self.response)
        return b"".join(self._writer.take())

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._writer.opening(self.response)

    def _delta(self, delta: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        for kind, piece in (
            ("reasoning_text", reasoning),
            ("output_text", delta.get("content")),
            ("refusal", delta.get("refusal")),
        ):
            if isinstance(piece, str) and piece:
                self._text(kind, piece)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict):
                self._call(position, call)

    def _text(self, kind: str, piece: str) -> None:
        """A text delta into the open item of its kind, opening an item or a part as needed."""
        item_kind = "reasoning" if kind == "reasoning_text" else "message"
        item = self._open
        if item is None or item.kind != item_kind:
            if item is not None:
                self._close(item, "completed")
            item_id = new_id("rs" if item_kind == "reasoning" else "msg")
            item = self._open = self._add(_Item(item_kind, item_id, len(self._items)))
        if not item.parts or item.parts[-1][0] != kind:
            if item.parts:
                self._part_done(item)
            item.parts.append((kind, []))
            part = _part(kind, []) if kind != "reasoning_text" else {"type": kind, "text": ""}
            self._writer.part_added(item.index, item.id, len(item.parts) - 1, part)
        item.parts[-1][1].append(piece)
        self._writer.part_delta(item.index, item.id, len(item.parts) - 1, kind, piece)

    def _call(self, position: int, call: dict[str, Any]) -> None:
        """A tool call fragment: the first of its index opens a function call item."""
        slot = call.get("index", position)
        function = call.get("function")
        name, arguments = get(function, "name"), get(function, "arguments")
        item = self._calls.get(slot if isinstance(slot, int) else position)
        if item is None:
            if self._open is not None:
                self._close(self._open, "completed")
            raw_id = call.get("id")
            call_id = raw_id if isinstance(raw_id, str) else new_id("call")
            item = _Item("function_call", new_id("fc"), len(self._items), call_id=call_id)
            item.name = name if isinstance(name, str) else ""
            self._calls[slot if isinstance(slot, int) else position] = self._add(item)
        elif isinstance(name, str) and not item.name:
            item.name = name
        if isinstance(arguments, str) and arguments:
            item.arguments.append(arguments)
            where = {"item_id": item.id, "output_index": item.index, "delta": arguments}
            self._writer.event("response.function_call_arguments.delta", **where)

    def _add(self, item: _Item) -> _Item:
        self._items.append(item)
        added = added_form(item.built())
        self._writer.event("response.output_item.added", output_index=item.index, item=added)
        return item

    def _part_done(self, item: _Item) -> None:
        content_index = len(item.parts) - 1
        kind, pieces = item.parts[-1]
        part = _part(kind, pieces) if kind != "reasoning_text" else {"type": kind}
        part |= {PART_EVENTS[kind][2]: "".join(pieces)}
        self._writer.part_done(item.index, item.id, content_index, part)

    def _close(self, item: _Item, status: str) -> None:
        """An item's closing events: its last part's, or its arguments', then item done."""
        if item.kind == "function_call":
            where = {"item_id": item.id, "output_index": item.index}
            arguments = "".join(item.arguments)
            self._writer.event(
                "response.function_call_arguments.done", **where, arguments=arguments
            )
        elif item.parts:
            self._part_done(item)
        item.status = status
        if item is self._open:
            self._open = None
        self._writer.event("response.output_item.done", output_index=item.index, item=item.built())
