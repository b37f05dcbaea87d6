"""The Mock vendor: in process, deterministic, configured by the model's ``params``.

``params`` keys (all optional):
- ``text``: the fixed answer. Without it the answer echoes the last user message
  (``"echo": false`` turns that off and gives a fixed default sentence);
- ``latency_ms``: wait before the first byte; ``chunk_delay_ms``: wait between stream chunks;
- ``words_per_chunk``: stream granularity (default 1);
- ``usage``: ``{"prompt_tokens": n, "completion_tokens": m}`` to report; by default the prompt's and
  the answer's word counts;
- ``tool_call``: ``{"name": …, "arguments": {…}}`` makes the answer that tool call; once the last
  message is a tool result, the answer is ``"Tool said: <that result>"``;
- ``embedding_dimensions``: the length of its embeddings when the request gives no
  ``dimensions`` (default 8): unit vectors derived from each input's hash; their
  ``prompt_tokens`` are ``usage.prompt_tokens``, else the inputs' words plus token ids.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from lowart.formats import embeddings
from lowart.formats.ids import EMBEDDINGS, OPENAI
from lowart.formats.openai import Usage, last_user_text, prompt_text
from lowart.formats.sse import DONE, encode_event
from lowart.model_entry import ModelEntry, OperationKind
from lowart.providers.base import ChatRequest, Completion
from lowart.providers.vendor import BaseUrl, Vendor

DEFAULT_TEXT = "This is a mock response from Lowart."


def _tool_result(body: dict[str, Any]) -> str | None:
    """The content of the last message when it is a tool result, else None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role") != "tool":
        return None
    content = last.get("content")
    return content if isinstance(content, str) else prompt_text({"messages": [last]})


def _int(value: object, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


class MockAnswer:
    """The deterministic answer for one request."""

    def __init__(self, params: dict[str, Any], body: dict[str, Any]) -> None:
        tool = params.get("tool_call")
        self.tool: dict[str, Any] | None = (
            tool if isinstance(tool, dict) and _tool_result(body) is None else None
        )
        result = _tool_result(body) if isinstance(tool, dict) else None
        if result is not None:
            self.text = f"Tool said: {result}"
        elif isinstance(params.get("text"), str):
            self.text = str(params["text"])
        elif params.get("echo", True) is not False and (echo := last_user_text(body)):
            self.text = echo
        else:
            self.text = DEFAULT_TEXT
        usage = params.get("usage") if isinstance(params.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        self.usage = Usage(
            prompt_tokens=_int(usage.get("prompt_tokens"), len(prompt_text(body).split()) or 1),
            completion_tokens=_int(usage.get("completion_tokens"), len(self.text.split())),
        )

    def tool_call(self) -> dict[str, Any]:
        assert self.tool is not None
        arguments = self.tool.get("arguments", {})
        return {
            "id": "call_mock_" + secrets.token_hex(6),
            "type": "function",
            "function": {
                "name": str(self.tool.get("name", "tool")),
                "arguments": arguments
                if isinstance(arguments, str)
                else msgspec.json.encode(arguments).decode(),
            },
        }


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _embeddings(model: ModelEntry, body: dict[str, Any]) -> Completion:
    """Unit vectors of the requested ``dimensions`` (else ``params.embedding_dimensions``)."""
    params = model.params
    dimensions = _int(body.get("dimensions"), _int(params.get("embedding_dimensions"), 8)) or 8
    usage = params.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    counted = len(embeddings.input_texts(body).split()) + embeddings.input_token_ids(body)
    prompt = _int(usage.get("prompt_tokens"), counted or 1)
    answer = embeddings.mock_answer(body, model.upstream_model, dimensions, prompt)
    return Completion(body=answer, usage=Usage(prompt, 0))


class MockStream:
    """An OpenAI-shaped stream of the mock answer."""

    def __init__(self, model: ModelEntry, request: ChatRequest, answer: MockAnswer) -> None:
        self._model = model
        self._request = request
        self._answer = answer
        self._sent_words = 0
        self.usage: Usage | None = None
        self._id = "chatcmpl-mock" + secrets.token_hex(8)
        self._created = int(time.time())

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: Usage | None = None
    ) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model.upstream_model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._request.wants_usage:
            chunk["usage"] = None
        if usage is not None:
            chunk["choices"] = []
            chunk["usage"] = _usage_dict(usage)
        return encode_event(msgspec.json.encode(chunk))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        params = self._model.params
        delay = _int(params.get("chunk_delay_ms"), 0) / 1000
        answer = self._answer
        if answer.tool is not None:
            call = answer.tool_call()
            args = call["function"]["arguments"]
            first = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield self._chunk({"role": "assistant", "content": None, "tool_calls": [first]})
            yield self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]})
            finish = "tool_calls"
        else:
            yield self._chunk({"role": "assistant", "content": ""})
            words = answer.text.split(" ")
            step = max(1, _int(params.get("words_per_chunk"), 1))
            for i in range(0, len(words), step):
                if delay:
                    await asyncio.sleep(delay)
                piece = " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
                self._sent_words = i + step
                yield self._chunk({"content": piece})
            finish = "stop"
        yield self._chunk({}, finish)
        self.usage = answer.usage
        if self._request.wants_usage:
            yield self._chunk({}, usage=answer.usage)
        yield DONE

    def completion_text(self) -> str:
        return " ".join(self._answer.text.split(" ")[: self._sent_words])

    async def aclose(self) -> None:
        return None


class MockProvider:
    """Answers without any network call."""

    native = OPENAI

    async def _wait(self, model: ModelEntry) -> None:
        latency = _int(model.params.get("latency_ms"), 0)
        if latency:
            await asyncio.sleep(latency / 1000)

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        await self._wait(model)
        if request.fmt == EMBEDDINGS:
            return _embeddings(model, request.body)
        answer = MockAnswer(model.params, request.body)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        finish = "stop"
        if answer.tool is not None:
            message["content"] = None
            message["tool_calls"] = [answer.tool_call()]
            finish = "tool_calls"
        body = {
            "id": "chatcmpl-mock" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.upstream_model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage_dict(answer.usage),
        }
        return Completion(body=msgspec.json.encode(body), usage=answer.usage)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> MockStream:
        await self._wait(model)
        return MockStream(model, request, MockAnswer(model.params, request.body))


VENDOR = Vendor(
    name="Mock",
    native=MockProvider.native,
    build=lambda _parts: MockProvider(),
    operations=frozenset({OperationKind.CHAT, OperationKind.EMBEDDINGS}),
    base_url=BaseUrl(required=False),  # in process: no upstream
    starter_model="mock",  # first run registers a ``mock`` model, to try the gateway with
)
