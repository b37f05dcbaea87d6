"""The OpenAI vendor (any OpenAI-compatible base URL): a same-format relay.

Only what the gateway owns changes on the way up: ``model`` becomes the upstream model,
``stream_options.include_usage`` is injected, and only the fields OpenAI documents go up
(``formats/request_fields.py``: ``async`` and any control-plane field are dropped). Answers are
relayed as they came; only the usage-bearing chunk is parsed, and it is dropped when the client
did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from lowart.errors import UpstreamAnswerBroken, UpstreamError
from lowart.formats import embeddings
from lowart.formats.ids import EMBEDDINGS, OPENAI, RESPONSES
from lowart.formats.openai import (
    Usage,
    carries_usage,
    completion_text_from_chunks,
    completion_usage,
    usage_from_chunk,
)
from lowart.formats.request_fields import OPENAI_CHAT_FIELDS
from lowart.formats.sse import DONE, SSEParser, encode_event
from lowart.model_entry import ModelEntry, OperationKind
from lowart.providers import openai_responses
from lowart.providers.base import ChatRequest, ChatStream, Completion
from lowart.providers.http import Transport, UpstreamResponse
from lowart.providers.statuses import UpstreamFailure, check_status
from lowart.providers.vendor import Vendor

_KEEP_FOR_ESTIMATE = 8 * 1024 * 1024


def upstream_body(model: ModelEntry, request: ChatRequest) -> bytes:
    """The request body sent upstream."""
    body = {k: v for k, v in request.body.items() if k in OPENAI_CHAT_FIELDS}
    body["model"] = model.upstream_model
    if request.stream:
        options = body.get("stream_options")
        body["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return msgspec.json.encode(body)


def upstream_headers(model: ModelEntry) -> dict[str, str]:
    """The request headers: the key as a bearer token, or as it is in ``params.auth_header``."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if model.api_key:
        if model.access.auth_header is None:
            headers["authorization"] = f"Bearer {model.api_key}"
        else:
            headers[model.access.auth_header] = model.api_key
    return headers


def failure_of(status: int, body: bytes, retry_after: str | None) -> UpstreamFailure:
    """Read an OpenAI-style error body, tolerating anything else."""
    try:
        parsed: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return UpstreamFailure(
            status=status,
            message=str(error.get("message") or f"upstream status {status}"),
            type=error.get("type") if isinstance(error.get("type"), str) else None,
            code=error.get("code") if isinstance(error.get("code"), str) else None,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            retry_after=retry_after,
        )
    text = body[:500].decode("utf-8", "replace").strip() or f"upstream status {status}"
    return UpstreamFailure(status=status, message=text, retry_after=retry_after)


class OpenAIStream:
    """Relays an upstream OpenAI stream, tapping the usage chunk: a chunk of plain events with
    no usage and no terminator goes on whole, any other event by event."""

    def __init__(self, response: UpstreamResponse, model_id: str, wants_usage: bool) -> None:
        self._response = response
        self._model_id = model_id
        self._wants_usage = wants_usage
        self._parser = SSEParser()
        self._seen: list[bytes] = []
        self._seen_bytes = 0
        self.usage: Usage | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        done = False
        async for chunk in self._response.chunks():
            if not carries_usage(chunk) and b"[DONE]" not in chunk:
                datas = self._parser.feed_plain(chunk)
                if datas is not None:  # nothing to tap or drop: relayed as it came
                    if self._seen_bytes < _KEEP_FOR_ESTIMATE:
                        self._seen += datas
                        self._seen_bytes += len(chunk)
                    yield chunk
                    continue
            out = [self._relay(data) for data in self._parser.feed_data(chunk)]
            done = done or DONE in out
            payload = b"".join(out)
            if payload:
                yield payload
            if done:
                self._response.release()
                return
        tail = b"".join(self._relay(e.data) for e in self._parser.close() if e.data)
        if tail:
            yield tail
        if DONE in tail:
            return
        if self.usage is None:
            raise UpstreamError(f"The upstream stream for '{self._model_id}' ended early.")
        yield DONE  # the vendor sent its usage but no terminator: end the stream properly

    def _relay(self, data: bytes) -> bytes:
        if data == b"[DONE]":
            return DONE
        usage, no_choices = usage_from_chunk(data)
        if usage is not None:
            self.usage = usage
            if no_choices and not self._wants_usage:
                return b""
        elif self._seen_bytes < _KEEP_FOR_ESTIMATE:
            self._seen.append(data)
            self._seen_bytes += len(data)
        return encode_event(data)

    def completion_text(self) -> str:
        return completion_text_from_chunks(self._seen)

    async def aclose(self) -> None:
        self._response.close()


class OpenAIProvider:
    """Chat Completions against any OpenAI-compatible ``base_url`` (which includes ``/v1``); a
    model's ``access`` (``params.auth_header``, ``params.query``) is prepared by the directory."""

    native = OPENAI

    @staticmethod
    def responds(model: ModelEntry) -> bool:
        """Whether Responses requests go to this model natively (``params.wire``)."""
        return model.access.responses

    def __init__(self, transport: Transport, embeddings_max_answer: int) -> None:
        self._transport = transport
        self._embeddings_max_answer = embeddings_max_answer

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        if request.fmt == EMBEDDINGS:
            return await self._embed(model, request)
        if request.fmt == RESPONSES:
            return await self._respond(model, request)
        url = f"{model.base_url}/chat/completions{model.access.query}"
        status, headers, body = await self._transport.fetch(
            url, upstream_headers(model), upstream_body(model, request), model
        )
        check_status(model.model_id, status, headers, body, failure_of)
        try:
            usage = completion_usage(body)
        except ValueError as exc:
            raise UpstreamAnswerBroken(
                f"The upstream for '{model.model_id}' sent a broken answer."
            ) from exc
        return Completion(body=body, usage=usage)

    async def _respond(self, model: ModelEntry, request: ChatRequest) -> Completion:
        """``POST /responses``, natively (docs/api.md, "Responses")."""
        status, headers, body = await self._transport.fetch(
            f"{model.base_url}/responses{model.access.query}",
            upstream_headers(model),
            openai_responses.upstream_body(model, request),
            model,
        )
        check_status(model.model_id, status, headers, body, failure_of)
        try:
            body, usage = openai_responses.owned(body, request)
        except (ValueError, TypeError) as exc:
            raise UpstreamAnswerBroken(
                f"The upstream for '{model.model_id}' sent a broken answer."
            ) from exc
        return Completion(body=body, usage=usage)

    async def _embed(self, model: ModelEntry, request: ChatRequest) -> Completion:
        """``POST /embeddings``: the answer in the encoding the caller asked for, whatever the
        upstream sent (docs/api.md, "Embeddings"); its size capped on its own."""
        status, headers, body = await self._transport.fetch(
            f"{model.base_url}/embeddings{model.access.query}",
            upstream_headers(model),
            embeddings.upstream_body(request.body, model.upstream_model),
            model,
            max_bytes=self._embeddings_max_answer,
        )
        check_status(model.model_id, status, headers, body, failure_of)
        try:
            usage = embeddings.answer_usage(body)
            body = embeddings.in_encoding(body, embeddings.wants_base64(request.body))
        except ValueError as exc:
            raise UpstreamAnswerBroken(
                f"The upstream for '{model.model_id}' sent a broken answer."
            ) from exc
        return Completion(body=body, usage=usage)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        if request.fmt == RESPONSES:
            response = await self._transport.post(
                f"{model.base_url}/responses{model.access.query}",
                upstream_headers(model),
                openai_responses.upstream_body(model, request),
                model,
            )
            await response.check(failure_of)
            return openai_responses.ResponsesStream(response, model.model_id, request)
        url = f"{model.base_url}/chat/completions{model.access.query}"
        response = await self._transport.post(
            url, upstream_headers(model), upstream_body(model, request), model
        )
        await response.check(failure_of)
        return OpenAIStream(response, model.model_id, request.wants_usage)


VENDOR = Vendor(
    name="OpenAI",
    native=OpenAIProvider.native,
    build=lambda parts: OpenAIProvider(parts.transport, parts.embeddings_max_answer),
    operations=frozenset({OperationKind.CHAT, OperationKind.EMBEDDINGS}),
    access=True,
)
