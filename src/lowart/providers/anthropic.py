"""The Anthropic vendor: the Messages API, relayed as it comes, with the usage events tapped.

Requests arrive here already in Anthropic's shape (``providers/crossing.py`` translates those of
OpenAI-format callers). The gateway owns ``model`` and sends only the fields Anthropic
documents (``formats/request_fields.py``: ``async`` and any control-plane field are dropped);
``anthropic-version`` and ``anthropic-beta`` are passed on from Anthropic-format callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from lowart.errors import UpstreamAnswerBroken, UpstreamError, UpstreamStreamError
from lowart.formats.anthropic import usage_from_anthropic
from lowart.formats.ids import ANTHROPIC
from lowart.formats.openai import Usage
from lowart.formats.request_fields import ANTHROPIC_MESSAGES_FIELDS
from lowart.formats.sse import SSEEvent, SSEParser, encode_event
from lowart.model_entry import ModelEntry
from lowart.providers.base import ChatRequest, Completion
from lowart.providers.http import Transport, UpstreamResponse
from lowart.providers.statuses import UpstreamFailure, check_status
from lowart.providers.vendor import Vendor

DEFAULT_VERSION = "2023-06-01"
_KEEP_FOR_ESTIMATE = 8 * 1024 * 1024


def upstream_body(model: ModelEntry, request: ChatRequest) -> bytes:
    body = {k: v for k, v in request.body.items() if k in ANTHROPIC_MESSAGES_FIELDS}
    body["model"] = model.upstream_model
    if request.stream:
        body["stream"] = True
    return msgspec.json.encode(body)


def upstream_headers(model: ModelEntry, request: ChatRequest) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "anthropic-version": request.headers.get("anthropic-version", DEFAULT_VERSION),
    }
    if beta := request.headers.get("anthropic-beta"):
        headers["anthropic-beta"] = beta
    if model.api_key:
        headers["x-api-key"] = model.api_key
    return headers


def _decode(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None


def failure_of(status: int, body: bytes, retry_after: str | None) -> UpstreamFailure:
    """Read an Anthropic error body (``{"type": "error", "error": {...}}``)."""
    parsed = _decode(body)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        return UpstreamFailure(
            status=status, message=error["message"], type=kind, retry_after=retry_after
        )
    text = body[:500].decode("utf-8", "replace").strip() or f"upstream status {status}"
    return UpstreamFailure(status=status, message=text, retry_after=retry_after)


def usage_of_message(body: bytes) -> Usage | None:
    parsed = _decode(body)
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    return usage_from_anthropic(usage) if isinstance(usage, dict) else None


def delta_texts(datas: list[bytes]) -> str:
    """Generated text in ``content_block_delta`` events (for estimation)."""
    parts = []
    for data in datas:
        event = _decode(data)
        delta = event.get("delta") if isinstance(event, dict) else None
        if isinstance(delta, dict):
            for key in ("text", "partial_json", "thinking"):
                if isinstance(delta.get(key), str):
                    parts.append(delta[key])
    return "".join(parts)


class AnthropicStream:
    """Relays Anthropic events, reading usage from ``message_start`` and ``message_delta``."""

    def __init__(self, response: UpstreamResponse, model_id: str) -> None:
        self._response = response
        self._model_id = model_id
        self._parser = SSEParser()
        self._usage: dict[str, Any] | None = None
        self._stopped = False
        self._final = False  # message_delta carried the final usage
        self._seen: list[bytes] = []
        self._seen_bytes = 0

    @property
    def usage(self) -> Usage | None:
        """Known only once ``message_delta`` has come: ``message_start`` holds a placeholder
        output count, so a stream cut before it is estimated instead."""
        if self._usage is None or not self._final:
            return None
        return usage_from_anthropic(self._usage)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.chunks():
            for payload in self._relay(self._parser.feed(chunk)):
                yield payload
            if self._stopped:
                self._response.release()
                return
        for payload in self._relay(self._parser.close()):
            yield payload
        if not self._stopped:
            raise UpstreamError(f"The upstream stream for '{self._model_id}' ended early.")

    def _relay(self, events: list[SSEEvent]) -> Iterator[bytes]:
        """The events to pass on, as one payload; an upstream error event raises after them."""
        out = []
        try:
            for event in events:
                if self._tap(event):
                    out.append(encode_event(event.data, event.event))
        finally:
            if out:
                yield b"".join(out)

    def _tap(self, event: SSEEvent) -> bool:
        """Read what billing needs; False drops the event. Raises on an upstream error event."""
        name = event.event
        if name == "content_block_delta" and self._seen_bytes < _KEEP_FOR_ESTIMATE:
            self._seen.append(event.data)
            self._seen_bytes += len(event.data)
        elif name == "message_start":
            message = (_decode(event.data) or {}).get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            self._usage = dict(usage) if isinstance(usage, dict) else {}
        elif name == "message_delta":
            usage = (_decode(event.data) or {}).get("usage")
            if isinstance(usage, dict) and self._usage is not None:
                self._usage.update({k: v for k, v in usage.items() if v is not None})
                self._final = True
        elif name == "message_stop":
            self._stopped = True
        elif name == "error":
            raise _stream_error(event.data, self._model_id)
        return bool(name)  # unnamed events mean nothing to Anthropic clients

    def completion_text(self) -> str:
        return delta_texts(self._seen)

    async def aclose(self) -> None:
        self._response.close()


def _stream_error(data: bytes, model_id: str) -> UpstreamStreamError:
    parsed = _decode(data)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return UpstreamStreamError(
            str(error.get("message") or "upstream stream error"),
            upstream_type=str(error.get("type") or "api_error"),
        )
    return UpstreamStreamError(
        f"The upstream stream for '{model_id}' failed.", upstream_type="api_error"
    )


class AnthropicProvider:
    """The Messages API at ``base_url`` (which has no ``/v1``)."""

    native = ANTHROPIC

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        url = f"{model.base_url}/v1/messages"
        status, headers, body = await self._transport.fetch(
            url, upstream_headers(model, request), upstream_body(model, request), model
        )
        check_status(model.model_id, status, headers, body, failure_of)
        if not isinstance(_decode(body), dict):
            raise UpstreamAnswerBroken(f"The upstream for '{model.model_id}' sent a broken answer.")
        return Completion(body=body, usage=usage_of_message(body))

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> AnthropicStream:
        url = f"{model.base_url}/v1/messages"
        response = await self._transport.post(
            url, upstream_headers(model, request), upstream_body(model, request), model
        )
        await response.check(failure_of)
        return AnthropicStream(response, model.model_id)


VENDOR = Vendor(
    name="Anthropic",
    native=AnthropicProvider.native,
    build=lambda parts: AnthropicProvider(parts.transport),
)
