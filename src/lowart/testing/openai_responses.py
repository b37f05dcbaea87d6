"""The fake OpenAI upstream's ``POST /v1/responses`` (``openai_fake.FakeOpenAI``), chosen by the
model name's options like its chat (``openai_behaviour.py``):

- ``ok`` or anything else: one message, ``"Hello from fake: " + <the last user message's text>``;
  ``input_tokens`` counts the words of every input text and the instructions (at least 1),
  ``output_tokens`` those of the answer (and of the reasoning). A stream sends OpenAI's events:
  ``response.created``, ``response.in_progress``, each item's added, content, done events (one
  ``response.output_text.delta`` per word), then ``response.completed``, numbered from 0.
- ``tools``: ``function_call`` items ``call_fake_1`` to the first function tool (or
  ``get_weather``) with ``{"city": "Paris"}`` and ``call_fake_2`` to ``get_time`` with ``{}``;
  when the last input item is a ``function_call_output``, the text ``"Tool said: <output>"``.
- ``reasoning``: a ``reasoning`` item with a summary first, its words as ``reasoning_tokens``.
- ``length``: only the answer's first three words, status ``incomplete`` with reason
  ``max_output_tokens`` (a stream ends with ``response.incomplete``).
- ``nousage``, ``usage-<input>-<output>``, ``error-<status>``, ``slow-<ms>``, ``chunkdelay-<ms>``,
  ``held``: as for chat; ``cut-<n>``: a stream stops after its first n + 1 events, a plain answer
  after half its body.

A body with ``previous_response_id`` gets a 400 ("fake keeps no responses"): the gateway owns
the conversation and must send it whole. The events are written here, independently of the
gateway's translators (``formats/responses_*.py``), so that tests compare the two.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lowart.formats.openai import error_body
from lowart.formats.sse import encode_event
from lowart.testing.openai_behaviour import Behaviour

Json = dict[str, Any]
CREATED = 1735689600
MODEL_SUFFIX = "-2024-01-01"
KEPT_WORDS = 3  # what a ``length`` answer keeps


def refusal(body: Json) -> bytes | None:
    """The 400 body for a request the fake refuses, or None."""
    if body.get("previous_response_id") is not None:
        return error_body(
            "fake keeps no responses", "invalid_request_error", None, "previous_response_id"
        )
    return None


def _texts(item: Json) -> list[str]:
    """The texts of one input item: a message's content, or a function call's output."""
    content = item.get("content") if item.get("role") else item.get("output")
    if isinstance(content, str):
        return [content]
    parts = content if isinstance(content, list) else []
    return [part["text"] for part in parts if isinstance(part, dict) and "text" in part]


def _items(body: Json) -> list[Json]:
    value = body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value or [] if isinstance(item, dict)]


def _words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def response_body(body: Json, behaviour: Behaviour, number: int) -> Json:
    """The whole ``response`` the fake answers with."""
    items = _items(body)
    output: list[Json] = []
    users = [item for item in items if item.get("role") == "user"]
    reasoning = "Thinking about: " + " ".join(_texts(users[-1])) if users else "Thinking"
    if behaviour.reasoning:
        summary = [{"type": "summary_text", "text": reasoning}]
        output.append({"id": f"rs_fake{number}", "type": "reasoning", "summary": summary})
    last = items[-1] if items else {}
    text: str | None = "Hello from fake: " + (" ".join(_texts(users[-1])) if users else "")
    if behaviour.tools and last.get("type") == "function_call_output":
        text = "Tool said: " + " ".join(_texts(last))
    elif behaviour.tools:
        text = None
        output += _calls(body)
    if text is not None:
        text = " ".join(text.split(" ")[:KEPT_WORDS]) if behaviour.length else text
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        status = "incomplete" if behaviour.length else "completed"
        message = {"id": f"msg_fake{number}", "type": "message", "role": "assistant"}
        output.append(message | {"status": status, "content": [part]})
    usage = _usage(body, items, output, behaviour) if behaviour.usage else None
    return _envelope(body, number, output, usage, behaviour.length)


def _calls(body: Json) -> list[Json]:
    tools = body.get("tools") or []
    names = [t.get("name") for t in tools if isinstance(t, dict) and t.get("type") == "function"]
    first = next((name for name in names if isinstance(name, str) and name), "get_weather")
    calls = [("call_fake_1", first, '{"city": "Paris"}'), ("call_fake_2", "get_time", "{}")]
    return [
        {"id": f"fc_fake_{index}", "type": "function_call", "status": "completed"}
        | {"call_id": call_id, "name": name, "arguments": arguments}
        for index, (call_id, name, arguments) in enumerate(calls, start=1)
    ]


def _usage(body: Json, items: list[Json], output: list[Json], behaviour: Behaviour) -> Json:
    """The words of the input and instructions, and of every generated text (reasoning too)."""
    instructions = body.get("instructions")
    inputs = [text for item in items for text in _texts(item)]
    inputs += [instructions] if isinstance(instructions, str) else []
    generated = [f"{item['name']} {item['arguments']}" for item in output if "name" in item]
    generated += [part["text"] for item in output for part in item.get("content", [])]
    reasoning = [part["text"] for item in output for part in item.get("summary", [])]
    counted = (max(1, _words(inputs)), _words(generated) + _words(reasoning))
    prompt, completion = behaviour.reported or counted
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _words(reasoning)},
        "total_tokens": prompt + completion,
    }


def _envelope(body: Json, number: int, output: list[Json], usage: Json | None, cut: bool) -> Json:
    echoed = ("instructions", "max_output_tokens", "previous_response_id", "reasoning", "user")
    return {
        "id": f"resp_fake{number}",
        "object": "response",
        "created_at": CREATED,
        "status": "incomplete" if cut else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "model": str(body.get("model")) + MODEL_SUFFIX,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "store": body.get("store", True),
        "truncation": "disabled",
        "usage": usage,
        **{name: body.get(name) for name in echoed},
    }


class _Events:
    """The stream's events, numbered as they are written."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.events), **fields}
        self.events.append(encode_event(msgspec.json.encode(data), kind))


def stream_events(response: Json, cut: int | None) -> list[bytes]:
    """The events OpenAI streams for this response; a cut stream stops after ``cut + 1``."""
    out = _Events()
    start = response | {"status": "in_progress", "output": [], "usage": None}
    start |= {"incomplete_details": None}
    out.add("response.created", response=start)
    out.add("response.in_progress", response=start)
    for index, item in enumerate(response["output"]):
        _item_events(out, index, item)
    ending = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    out.add(ending, response=response)
    return out.events if cut is None else out.events[: cut + 1]


def _item_events(out: _Events, index: int, item: Json) -> None:
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        started = item | {"content": [], "status": "in_progress"}
        out.add("response.output_item.added", output_index=index, item=started)
        part = item["content"][0]
        at = where | {"content_index": 0}
        out.add("response.content_part.added", **at, part=part | {"text": ""})
        pieces = part["text"].split(" ")
        for word in [piece + " " for piece in pieces[:-1]] + pieces[-1:]:
            out.add("response.output_text.delta", **at, delta=word, logprobs=[])
        out.add("response.output_text.done", **at, text=part["text"], logprobs=[])
        out.add("response.content_part.done", **at, part=part)
    elif item["type"] == "function_call":
        started = item | {"arguments": "", "status": "in_progress"}
        out.add("response.output_item.added", output_index=index, item=started)
        arguments = item["arguments"]
        half = max(1, len(arguments) // 2)
        for piece in (arguments[:half], arguments[half:]):
            out.add("response.function_call_arguments.delta", **where, delta=piece)
        out.add("response.function_call_arguments.done", **where, arguments=arguments)
    else:
        out.add("response.output_item.added", output_index=index, item=item | {"summary": []})
        _summary_events(out, where, item["summary"][0])
    out.add("response.output_item.done", output_index=index, item=item)


def _summary_events(out: _Events, where: Json, part: Json) -> None:
    at = where | {"summary_index": 0}
    out.add("response.reasoning_summary_part.added", **at, part=part | {"text": ""})
    out.add("response.reasoning_summary_text.delta", **at, delta=part["text"])
    out.add("response.reasoning_summary_text.done", **at, text=part["text"])
    out.add("response.reasoning_summary_part.done", **at, part=part)
