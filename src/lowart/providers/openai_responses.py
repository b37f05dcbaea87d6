"""OpenAI's Responses API relayed natively, for a model whose upstream speaks it
(``params.wire: "responses"``, docs/api.md "Responses").

The gateway owns response ids and history: the request arrives with its whole conversation as
``input`` (the edge rebuilt it) and goes up with ``store: false`` and no
``previous_response_id``; the answer's id, model name and those settings become the
gateway's. Every streamed event is read, to take the usage from the last one and the text for
an estimate should the stream break.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from lowart.errors import UpstreamError
from lowart.formats.ids import response_id
from lowart.formats.openai import Usage
from lowart.formats.responses_output import usage_from_response
from lowart.formats.sse import SSEParser, encode_event
from lowart.model_entry import ModelEntry
from lowart.providers.base import ChatRequest
from lowart.providers.http import UpstreamResponse

# The request fields a Responses upstream is sent; the gateway's own (``background``,
# ``previous_response_id``, ``store``, ``async``) never go up.
UPSTREAM_FIELDS = frozenset(
    {
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "max_tool_calls",
        "temperature",
        "top_p",
        "top_logprobs",
        "text",
        "parallel_tool_calls",
        "reasoning",
        "stream",
        "include",
        "truncation",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    }
)
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_KEEP_FOR_ESTIMATE = 8 * 1024 * 1024


def upstream_body(model: ModelEntry, request: ChatRequest) -> bytes:
    """The body sent to ``POST /responses``: nothing is stored upstream."""
    body = {k: v for k, v in request.body.items() if k in UPSTREAM_FIELDS}
    body["model"] = model.upstream_model
    body["store"] = False
    return msgspec.json.encode(body)


def gateway_fields(request: ChatRequest) -> dict[str, Any]:
    """What a Response says of the gateway's side, not the upstream's: its id, the model asked
    for, and the settings the gateway kept to itself (the upstream was sent ``store: false``)."""
    body = request.body
    return {
        "id": response_id(request.request_id),
        "model": body.get("model"),
        "store": body.get("store") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "background": body.get("background") is True,
        "metadata": body.get("metadata") or {},
    }


def owned(body: bytes, request: ChatRequest) -> tuple[bytes, Usage | None]:
    """A whole Response with the gateway's id and settings, and its usage."""
    response = msgspec.json.decode(body)
    if not isinstance(response, dict):
        raise ValueError("not a Response object")
    response.update(gateway_fields(request))
    return msgspec.json.encode(response), usage_from_response(response.get("usage"))


class ResponsesStream:
    """Relays a Responses event stream, each event with the gateway's response id."""

    def __init__(self, response: UpstreamResponse, model_id: str, request: ChatRequest) -> None:
        self._response = response
        self._model_id = model_id
        self._owned = gateway_fields(request)
        self._parser = SSEParser()
        self._text: list[str] = []
        self._kept = 0
        self._done = False
        self.usage: Usage | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.chunks():
            out = b"".join(self._relay(event.data) for event in self._parser.feed(chunk))
            if out:
                yield out
            if self._done:
                self._response.release()
                return
        tail = b"".join(self._relay(event.data) for event in self._parser.close())
        if tail:
            yield tail
        if not self._done:
            raise UpstreamError(f"The upstream stream for '{self._model_id}' ended early.")

    def _relay(self, data: bytes) -> bytes:
        if not data:
            return b""
        try:
            event: Any = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(
                f"The upstream for '{self._model_id}' sent a broken event."
            ) from exc
        kind = event.get("type") if isinstance(event, dict) else None
        if not isinstance(kind, str) or "\n" in kind or "\r" in kind:
            raise UpstreamError(f"The upstream for '{self._model_id}' sent a broken event.")
        response = event.get("response")
        if isinstance(response, dict):
            response.update(self._owned)
            if kind in TERMINAL:
                self._done = True
                self.usage = usage_from_response(response.get("usage"))
        elif kind == "response.output_text.delta" and self._kept < _KEEP_FOR_ESTIMATE:
            delta = str(event.get("delta") or "")
            self._text.append(delta)
            self._kept += len(delta)
        return encode_event(msgspec.json.encode(event), event=kind)

    def completion_text(self) -> str:
        return "".join(self._text)

    async def aclose(self) -> None:
        self._response.close()
