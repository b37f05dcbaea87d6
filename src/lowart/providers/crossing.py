"""Crossing formats: a provider seen in the caller's wire format.

A same-format pair (OpenAI caller, OpenAI vendor) uses the provider as it is. A cross-format pair
translates the request into the provider's native format, and the answer (whole or streamed)
back into the caller's, through the pure translators of ``formats/``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import msgspec

from lowart.errors import UpstreamError
from lowart.formats.anthropic_tools import ToolNames
from lowart.formats.ids import ANTHROPIC, OPENAI, RESPONSES, response_id
from lowart.formats.openai import Usage
from lowart.formats.responses_output import ChatChunksToResponses, chat_to_response
from lowart.formats.responses_request import responses_to_chat
from lowart.formats.sse import SSEEvent, SSEParser
from lowart.formats.translate_request import anthropic_to_openai, openai_to_anthropic
from lowart.formats.translate_response import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)
from lowart.formats.translate_stream import AnthropicToOpenAI, OpenAIToAnthropic
from lowart.model_entry import ModelEntry
from lowart.providers.base import ChatRequest, ChatStream, Completion, Provider

DEFAULT_MAX_TOKENS = 4096


def _json(body: bytes, model_id: str) -> dict[str, object]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise UpstreamError(f"The upstream for '{model_id}' sent a broken answer.") from exc
    if not isinstance(value, dict):
        raise UpstreamError(f"The upstream for '{model_id}' sent a broken answer.")
    return value


class _TranslatedStream:
    """A native stream re-framed and translated event by event into the caller's format."""

    def __init__(self, native: ChatStream) -> None:
        self._native = native
        self._parser = SSEParser()

    @property
    def usage(self) -> Usage | None:
        return self._native.usage

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        async for chunk in self._native:
            out = self._translate(self._parser.feed(chunk))
            if out:
                yield out
        tail = self._translate(self._parser.close()) + self._finish()
        if tail:
            yield tail
        if not self._done():
            raise UpstreamError("The upstream stream ended without finishing its answer.")

    def _translate(self, events: list[SSEEvent]) -> bytes:
        raise NotImplementedError

    def _finish(self) -> bytes:
        return b""

    def _done(self) -> bool:
        raise NotImplementedError

    def completion_text(self) -> str:
        return self._native.completion_text()

    async def aclose(self) -> None:
        await self._native.aclose()


class _AnthropicStreamAsOpenAI(_TranslatedStream):
    def __init__(self, native: ChatStream, translator: AnthropicToOpenAI) -> None:
        super().__init__(native)
        self._translator = translator

    def _translate(self, events: list[SSEEvent]) -> bytes:
        return b"".join(self._translator.feed(event) for event in events)

    def _done(self) -> bool:
        return self._translator.done


class _OpenAIStreamAsAnthropic(_TranslatedStream):
    def __init__(self, native: ChatStream, translator: OpenAIToAnthropic) -> None:
        super().__init__(native)
        self._translator = translator

    def _translate(self, events: list[SSEEvent]) -> bytes:
        return b"".join(self._translator.feed(event.data) for event in events if event.data)

    def _finish(self) -> bytes:
        return self._translator.finish()

    def _done(self) -> bool:
        return self._translator.done


class _OpenAIOverAnthropic:
    """An OpenAI-format caller served by an Anthropic-native provider."""

    native = OPENAI

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def _native(self, model: ModelEntry, request: ChatRequest) -> tuple[ChatRequest, ToolNames]:
        names = ToolNames.from_tools(request.body.get("tools"))
        default = model.params.get("default_max_tokens")
        body = openai_to_anthropic(
            request.body,
            upstream_model=model.upstream_model,
            default_max_tokens=default if isinstance(default, int) else DEFAULT_MAX_TOKENS,
        )
        return dataclasses.replace(request, body=body, fmt=ANTHROPIC, headers={}), names

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        native, names = self._native(model, request)
        answer = await self._provider.complete(model, native)
        body = anthropic_to_openai_response(
            _json(answer.body, model.model_id), created=int(time.time()), names=names
        )
        return Completion(msgspec.json.encode(body), answer.usage)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        native, names = self._native(model, request)
        stream = await self._provider.open_stream(model, native)
        translator = AnthropicToOpenAI(
            include_usage=request.wants_usage, created=int(time.time()), names=names
        )
        return _AnthropicStreamAsOpenAI(stream, translator)


class _AnthropicOverOpenAI:
    """An Anthropic-format caller served by an OpenAI-native provider."""

    native = ANTHROPIC

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def _native(self, model: ModelEntry, request: ChatRequest) -> tuple[ChatRequest, ToolNames]:
        names = ToolNames.from_tools(request.body.get("tools"))
        body = anthropic_to_openai(request.body, upstream_model=model.upstream_model)
        # The translated stream needs the usage chunk to fill message_delta.usage.
        native = dataclasses.replace(request, body=body, fmt=OPENAI, wants_usage=True, headers={})
        return native, names

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        native, names = self._native(model, request)
        answer = await self._provider.complete(model, native)
        body = openai_to_anthropic_response(_json(answer.body, model.model_id), names=names)
        return Completion(msgspec.json.encode(body), answer.usage)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        native, names = self._native(model, request)
        stream = await self._provider.open_stream(model, native)
        translator = OpenAIToAnthropic(model=model.upstream_model, names=names)
        return _OpenAIStreamAsAnthropic(stream, translator)


class _ChatStreamAsResponses(_TranslatedStream):
    def __init__(
        self, native: ChatStream, translator: ChatChunksToResponses, model_id: str
    ) -> None:
        super().__init__(native)
        self._translator = translator
        self._model_id = model_id

    def _translate(self, events: list[SSEEvent]) -> bytes:
        out = []
        for event in events:
            if event.data and event.data != b"[DONE]":
                out.append(self._translator.feed(_json(event.data, self._model_id)))
        return b"".join(out)

    def _finish(self) -> bytes:
        return self._translator.finish()

    def _done(self) -> bool:
        return self._translator.done


class _ResponsesOverChat:
    """A Responses caller: relayed natively to a model whose vendor answers Responses requests
    itself (``responds``: OpenAI with ``params.wire: "responses"``, ComfyUI), else translated
    to Chat Completions and back, whatever the vendor (an Anthropic one through
    ``_OpenAIOverAnthropic`` in turn)."""

    native = RESPONSES

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._chat = in_caller_format(provider, OPENAI)
        self._responds = getattr(provider, "responds", None)  # a vendor's own Responses API

    def _native(self, model: ModelEntry) -> bool:
        return self._responds is not None and self._responds(model) is True

    @staticmethod
    def _as_chat(request: ChatRequest) -> ChatRequest:
        body = responses_to_chat(request.body, request.body.get("input") or [])
        return dataclasses.replace(request, body=body, fmt=OPENAI, wants_usage=True, headers={})

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        if self._native(model):
            return await self._provider.complete(model, request)
        answer = await self._chat.complete(model, self._as_chat(request))
        body = chat_to_response(
            _json(answer.body, model.model_id),
            response_id=response_id(request.request_id),
            created_at=int(time.time()),
            request=request.body,
        )
        return Completion(msgspec.json.encode(body), answer.usage)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        if self._native(model):
            return await self._provider.open_stream(model, request)
        stream = await self._chat.open_stream(model, self._as_chat(request))
        translator = ChatChunksToResponses(
            response_id=response_id(request.request_id),
            created_at=int(time.time()),
            request=request.body,
        )
        return _ChatStreamAsResponses(stream, translator, model.model_id)


def in_caller_format(provider: Provider, caller: str) -> Provider:
    """``provider`` as seen by a caller speaking ``caller`` (OPENAI, ANTHROPIC, RESPONSES)."""
    if provider.native == caller or caller not in (OPENAI, ANTHROPIC, RESPONSES):
        return provider
    if caller == OPENAI:
        return _OpenAIOverAnthropic(provider)
    if caller == RESPONSES:
        return _ResponsesOverChat(provider)
    return _AnthropicOverOpenAI(provider)
