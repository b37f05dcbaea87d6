"""The Responses API's stream events (``event: <type>`` and a JSON ``data`` with ``type`` and
``sequence_number``), and a whole ``response`` told as the sequence OpenAI sends:
``response.created``, ``response.in_progress``, each output item's events, then
``response.completed`` (or ``response.incomplete`` / ``response.failed``).

Pure, no I/O. The shapes are the ``openai`` SDK's ``Response*Event`` types, in the order its
stream accumulator (``ResponseStreamState``) expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from lowart.formats.responses_build import CLOSING, Json
from lowart.formats.sse import encode_event

# A content part's delta and done events, and the key holding its text.
PART_EVENTS = {
    "output_text": ("response.output_text.delta", "response.output_text.done", "text"),
    "refusal": ("response.refusal.delta", "response.refusal.done", "refusal"),
    "reasoning_text": ("response.reasoning_text.delta", "response.reasoning_text.done", "text"),
}


class EventWriter:
    """Encodes events, numbering them from 0 across one stream, into ``events`` until taken."""

    __slots__ = ("events", "sequence")

    def __init__(self) -> None:
        self.sequence = 0
        self.events: list[bytes] = []

    def take(self) -> list[bytes]:
        """The events written since the last take, one SSE event each."""
        events, self.events = self.events, []
        return events

    def event(self, kind: str, **fields: Any) -> None:
        """One SSE event of this type, with the next sequence number."""
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        self.events.append(encode_event(msgspec.json.encode(data), kind))

    def opening(self, response: Json) -> None:
        """``response.created`` and ``response.in_progress``, the response in progress."""
        started = response | {"status": "in_progress", "output": [], "usage": None}
        started |= {"incomplete_details": None, "error": None}
        self.event("response.created", response=started)
        self.event("response.in_progress", response=started)

    def closing(self, response: Json) -> None:
        """The event ending the stream, carrying the whole response."""
        status = response.get("status")
        kind = CLOSING.get(status, "response.failed") if isinstance(status, str) else None
        self.event(kind or "response.failed", response=response)

    def part_added(self, index: int, item_id: str, content_index: int, part: Json) -> None:
        """``response.content_part.added`` with the part still empty."""
        empty = part | {PART_EVENTS[part["type"]][2]: ""}
        self.event(
            "response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            part=empty,
        )

    def part_delta(
        self, index: int, item_id: str, content_index: int, kind: str, delta: str
    ) -> None:
        """One delta of a content part's text."""
        extra: Json = {"logprobs": []} if kind == "output_text" else {}
        where: Json = {"item_id": item_id, "output_index": index, "content_index": content_index}
        self.event(PART_EVENTS[kind][0], **where, delta=delta, **extra)

    def part_done(self, index: int, item_id: str, content_index: int, part: Json) -> None:
        """A part's text done, then ``response.content_part.done`` with the whole part."""
        _, done, key = PART_EVENTS[part["type"]]
        extra: Json = {"logprobs": []} if part["type"] == "output_text" else {}
        where: Json = {"item_id": item_id, "output_index": index, "content_index": content_index}
        self.event(done, **where, **{key: part[key]}, **extra)
        self.event("response.content_part.done", **where, part=part)

    def arguments(self, index: int, item_id: str, arguments: str, mcp: bool = False) -> None:
        """A call's arguments as one delta (if any) and done."""
        kind = "response.mcp_call_arguments" if mcp else "response.function_call_arguments"
        where: Json = {"item_id": item_id, "output_index": index}
        if arguments:
            self.event(kind + ".delta", **where, delta=arguments)
        self.event(kind + ".done", **where, arguments=arguments)


def response_events(response: Json) -> list[bytes]:
    """A whole response told as the events of a stream, numbered from 0, one SSE event each."""
    writer = EventWriter()
    writer.opening(response)
    for index, item in enumerate(response.get("output") or ()):
        writer.event("response.output_item.added", output_index=index, item=added_form(item))
        _ITEM_EVENTS.get(item.get("type"), _none)(writer, index, item)
        writer.event("response.output_item.done", output_index=index, item=item)
    writer.closing(response)
    return writer.take()


def added_form(item: Json) -> Json:
    """An item as ``response.output_item.added`` announces it: in progress, without content."""
    kind = item.get("type")
    if kind == "message":
        return item | {"status": "in_progress", "content": []}
    if kind == "reasoning":
        return item | {"status": "in_progress", "content": [], "summary": []}
    if kind == "function_call":
        return item | {"status": "in_progress", "arguments": ""}
    if kind == "mcp_call":
        return item | {"status": "in_progress", "arguments": "", "output": None, "error": None}
    if kind == "mcp_list_tools":
        return item | {"tools": []}
    return item


def _none(writer: EventWriter, index: int, item: Json) -> None:
    return None


def _parts(writer: EventWriter, index: int, item: Json) -> None:
    for content_index, part in enumerate(item.get("content") or ()):
        writer.part_added(index, item["id"], content_index, part)
        text = part[PART_EVENTS[part["type"]][2]]
        if text:
            writer.part_delta(index, item["id"], content_index, part["type"], text)
        writer.part_done(index, item["id"], content_index, part)


def _reasoning(writer: EventWriter, index: int, item: Json) -> None:
    _parts(writer, index, item)
    kind = "response.reasoning_summary"
    for summary_index, part in enumerate(item.get("summary") or ()):
        at: Json = {"item_id": item["id"], "output_index": index, "summary_index": summary_index}
        writer.event(kind + "_part.added", **at, part=part | {"text": ""})
        if part["text"]:
            writer.event(kind + "_text.delta", **at, delta=part["text"])
        writer.event(kind + "_text.done", **at, text=part["text"])
        writer.event(kind + "_part.done", **at, part=part)


def _function_call(writer: EventWriter, index: int, item: Json) -> None:
    writer.arguments(index, item["id"], item["arguments"])


def _mcp_list_tools(writer: EventWriter, index: int, item: Json) -> None:
    where: Json = {"item_id": item["id"], "output_index": index}
    writer.event("response.mcp_list_tools.in_progress", **where)
    end = "failed" if item.get("error") else "completed"
    writer.event(f"response.mcp_list_tools.{end}", **where)


def _mcp_call(writer: EventWriter, index: int, item: Json) -> None:
    where: Json = {"item_id": item["id"], "output_index": index}
    writer.event("response.mcp_call.in_progress", **where)
    writer.arguments(index, item["id"], item["arguments"], mcp=True)
    end = "failed" if item.get("error") or item.get("status") == "failed" else "completed"
    writer.event(f"response.mcp_call.{end}", **where)


_ITEM_EVENTS: dict[object, Callable[[EventWriter, int, Json], None]] = {
    "message": _parts,
    "reasoning": _reasoning,
    "function_call": _function_call,
    "mcp_list_tools": _mcp_list_tools,
    "mcp_call": _mcp_call,
}
