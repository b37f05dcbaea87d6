"""A fake OpenAI-compatible upstream, a raw ASGI app whose behaviour is chosen by the model name.

Routes: ``POST /v1/chat/completions``, ``POST /v1/responses`` (``openai_responses.py``, with its
own ``reasoning`` and ``length`` options), ``POST /v1/embeddings`` (``openai_embeddings.py``,
with its own ``floats`` option), ``GET /v1/models``, ``GET /v1/models/{id}`` (each also without
``/v1``, and chat also as Azure's ``/openai/deployments/<name>/chat/completions``); others get a
404 error body. Responses carry ``x-request-id``; their ``model``
is the requested one plus ``-2024-01-01``, as a vendor reports its dated snapshot. The requested
``model`` (the gateway's ``upstream_model``) is split on ``:`` into options; unknown parts, such
as a real model name, are ignored, so ``tools:slow-200`` or ``gpt-4o:nousage`` combine freely
(``openai_behaviour.py`` reads them):

- ``ok`` or anything else: the answer ``"Hello from fake: " + <last user message text>``;
  ``prompt_tokens`` counts the whitespace-separated words of all message texts (at least 1),
  ``completion_tokens`` those of the answer, times ``n`` (each of the ``n`` choices, default 1,
  is that answer). A stream sends, for each choice in turn (its ``index`` in its chunks), a chunk
  with ``role: assistant`` and ``content: ""``, one chunk per word and one with an empty delta
  and ``finish_reason: "stop"``; then, with ``stream_options.include_usage`` only, a usage chunk
  with ``choices: []`` (every other chunk then has ``"usage": null``), then ``data: [DONE]``.
- ``error-<status>`` (400-599): that status with an OpenAI error body; ``error-400`` is an
  ``invalid_request_error`` "fake bad request" with param ``messages``, ``error-429`` has code
  ``rate_limit_exceeded`` and ``Retry-After: 7`` (``retryafter-<s>``: that many seconds
  instead), 5xx are ``server_error``.
- ``slow-<ms>``: wait before answering (before a stream's first byte); ``chunkdelay-<ms>``:
  wait between stream chunks. Both take milliseconds.
- ``held``: wait until ``released`` (a ``threading.Event``, set at first) is set: a test clears
  it to keep requests in flight upstream, then sets it from its own thread.
- ``cut-<n>``: a stream sends its first chunk and n more, then drops the connection with no
  finish, usage or ``[DONE]``; a plain answer sends its headers and half its body, then drops it.
- ``tools``: content null, ``finish_reason: "tool_calls"`` and two parallel calls: ``call_fake_1``
  to the request's first tool (or ``get_weather``) with ``{"city": "Paris"}``, ``call_fake_2`` to
  ``get_time`` with ``{}``, streamed as OpenAI streams them. After a ``tool`` message (the last
  one) the answer is the text ``"Tool said: <its content>"`` instead.
- ``redirect-<status>`` (300-399): that status, a ``Location`` elsewhere and a plain answer's
  body (what a gateway must not relay as a success), for a stream too.
- ``big-<kib>``: a plain answer whose content is padded with ``x`` to at least that many KiB;
  with ``chunked`` it is sent with no ``Content-Length``, in 16 KiB pieces.
- ``nousage``: no usage in a body or a stream. ``usage-<prompt>-<completion>``: report these
  counts instead, where ``m`` marks a negative (``usage-m5-10``). ``cached-<n>``: report ``n``
  of the prompt tokens as ``prompt_tokens_details.cached_tokens`` (at most the prompt).
- ``echo_headers``: the answer is the JSON object of the request headers (lowercased names).
- ``azure``: as Azure OpenAI, a 401 unless the ``api-key`` header is ``azure_key`` (an attribute,
  ``"azure-fake-key"`` at first), then a 404 unless the query has ``api-version``.

On a ``FakeOpenAI``, ``calls`` records each chat request (with its raw query string),
``embedding_calls`` each embeddings request and ``responses_calls`` each Responses request;
``requests`` counts HTTP requests and ``disconnects`` counts streams the client left early.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict
from urllib.parse import parse_qs

import msgspec
from starlette.types import Receive, Scope, Send

from lowart.formats.openai import error_body
from lowart.formats.sse import DONE, encode_event
from lowart.testing import openai_responses
from lowart.testing.asgi import FakeUpstream, read_body, send_json
from lowart.testing.openai_behaviour import Behaviour, error_answer, parse_behaviour
from lowart.testing.openai_embeddings import embeddings_body

__all__ = ["Behaviour", "FakeCall", "FakeOpenAI", "parse_behaviour"]

MODEL_SUFFIX = "-2024-01-01"
CREATED = 1735689600
MODEL_IDS = ("ok", "tools", "nousage", "echo_headers")
_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/[^/]+")

_ToolCall = tuple[str, str, str]  # id, function name, arguments


class FakeCall(TypedDict):
    """One chat request as the fake received it."""

    model: str
    stream: bool
    headers: dict[str, str]
    body: dict[str, object]
    query: NotRequired[str]  # the raw query string (the fake OpenAI's calls)


class _Part(msgspec.Struct):
    text: str | None = None


class _Message(msgspec.Struct):
    role: str = ""
    content: str | list[_Part] | None = None


class _Function(msgspec.Struct):
    name: str = ""


class _Tool(msgspec.Struct):
    function: _Function | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _Request(msgspec.Struct):
    model: str
    messages: list[_Message] = []
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    tools: list[_Tool] | None = None
    n: int | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    content: str | None
    tool_calls: tuple[_ToolCall, ...]
    usage: tuple[int, int] | None
    finish_reason: str
    choices: int = 1
    cached: int = 0


def _text(message: _Message) -> str:
    if isinstance(message.content, list):
        return " ".join(part.text for part in message.content if part.text)
    return message.content or ""


def _answer(request: _Request, behaviour: Behaviour, headers: dict[str, str]) -> _Answer:
    """The content or tool calls to send, with the usage to report."""
    last = request.messages[-1] if request.messages else None
    calls: tuple[_ToolCall, ...] = ()
    if behaviour.echo_headers:
        content: str | None = msgspec.json.encode(headers).decode()
    elif behaviour.tools and last is not None and last.role == "tool":
        content = "Tool said: " + _text(last)
    elif behaviour.tools:
        content, calls = None, _tool_calls(request)
    else:
        users = [message for message in request.messages if message.role == "user"]
        content = "Hello from fake: " + (_text(users[-1]) if users else "")
        content += " " + "x" * (behaviour.big_kib * 1024) if behaviour.big_kib else ""
    prompt = max(1, sum(len(_text(message).split()) for message in request.messages))
    generated = content or " ".join(f"{name} {args}" for _, name, args in calls)
    choices = max(request.n or 1, 1)
    completion = len(generated.split()) * choices
    usage = behaviour.reported or (prompt, completion)
    finish = "tool_calls" if calls else "stop"
    cached = min(behaviour.cached, usage[0])
    return _Answer(content, calls, usage if behaviour.usage else None, finish, choices, cached)


def _tool_calls(request: _Request) -> tuple[_ToolCall, ...]:
    names = [tool.function.name for tool in request.tools or () if tool.function]
    first = next((name for name in names if name), "get_weather")
    return ("call_fake_1", first, '{"city": "Paris"}'), ("call_fake_2", "get_time", "{}")


def _usage_json(usage: tuple[int, int], cached: int = 0) -> dict[str, object]:
    prompt, completion = usage
    usage_json: dict[str, object] = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage_json["total_tokens"] = prompt + completion
    usage_json["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage_json


def _envelope(completion_id: str, model: str, kind: str) -> dict[str, object]:
    return {"id": completion_id, "object": kind, "created": CREATED, "model": model}


def _completion_body(completion_id: str, model: str, answer: _Answer) -> bytes:
    message: dict[str, object] = {"role": "assistant", "content": answer.content}
    message |= {"refusal": None, "annotations": []}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in answer.tool_calls
        ]
    choices = [
        {"index": index, "message": message, "finish_reason": answer.finish_reason}
        for index in range(answer.choices)
    ]
    body = _envelope(completion_id, model, "chat.completion") | {"choices": choices}
    if answer.usage is not None:
        body["usage"] = _usage_json(answer.usage, answer.cached)
    return msgspec.json.encode(body)


def _stream_events(
    completion_id: str, model: str, answer: _Answer, include_usage: bool, cut: int | None
) -> list[bytes]:
    """The SSE events of a streamed answer; a cut one stops after its first ``cut + 1`` chunks."""
    envelope = _envelope(completion_id, model, "chat.completion.chunk")
    null_usage: dict[str, object] = {"usage": None} if include_usage else {}
    deltas: list[tuple[int, dict[str, object], str | None]] = []
    for index in range(answer.choices):
        deltas += [(index, d, None) for d in _deltas(answer)]
        if cut is None:
            deltas.append((index, {}, answer.finish_reason))
    if cut is not None:
        deltas = deltas[: cut + 1]
    events = [
        envelope
        | {"choices": [{"index": i, "delta": d, "logprobs": None, "finish_reason": f}]}
        | null_usage
        for i, d, f in deltas
    ]
    if cut is None and include_usage and answer.usage is not None:
        events.append(envelope | {"choices": [], "usage": _usage_json(answer.usage, answer.cached)})
    done = [] if cut is not None else [DONE]
    return [encode_event(msgspec.json.encode(event)) for event in events] + done


def _deltas(answer: _Answer) -> list[dict[str, object]]:
    """The deltas before the finish chunk: the role first, then words or tool-call fragments."""
    if not answer.tool_calls:
        pieces = (answer.content or "").split(" ")
        words = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
        first: dict[str, object] = {"role": "assistant", "content": ""}
        return [first] + [{"content": word} for word in words if word]
    fragments: list[dict[str, object]] = []
    for index, (call_id, name, args) in enumerate(answer.tool_calls):
        head = {"name": name, "arguments": ""}
        fragments.append({"index": index, "id": call_id, "type": "function", "function": head})
        middle = max(1, len(args) // 2)
        for part in (args[:middle], args[middle:]):
            fragments.append({"index": index, "function": {"arguments": part}})
    first = {"role": "assistant", "content": None, "tool_calls": [fragments[0]]}
    return [first] + [{"tool_calls": [fragment]} for fragment in fragments[1:]]


class FakeOpenAI(FakeUpstream):
    """The fake upstream as an ASGI app; its request log lives on the instance."""

    request_id_header = b"x-request-id"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[FakeCall] = []  # chat requests
        self.embedding_calls: list[FakeCall] = []  # embeddings requests
        self.responses_calls: list[FakeCall] = []  # Responses API requests
        self.released = threading.Event()  # what ``held`` requests wait for
        self.released.set()
        self.azure_key = "azure-fake-key"  # the ``api-key`` an ``azure`` model requires

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        path: str = _AZURE_DEPLOYMENT.sub("", scope["path"].removeprefix("/v1"))
        if scope["method"] == "POST" and path == "/chat/completions":
            await self._chat(receive, send, headers, scope["query_string"].decode("latin-1"))
        elif scope["method"] == "POST" and path == "/responses":
            await self._responses(receive, send, headers)
        elif scope["method"] == "POST" and path == "/embeddings":
            await self._embeddings(receive, send, headers)
        elif scope["method"] == "GET" and path == "/models":
            models = [_model(model_id) for model_id in MODEL_IDS]
            await send_json(send, 200, msgspec.json.encode({"object": "list", "data": models}))
        elif scope["method"] == "GET" and path.startswith("/models/"):
            await send_json(send, 200, msgspec.json.encode(_model(path.removeprefix("/models/"))))
        else:
            body = error_body(f"no route {scope['method']} {path}", "invalid_request_error", None)
            await send_json(send, 404, body)

    async def _chat(
        self, receive: Receive, send: Send, headers: dict[str, str], query: str
    ) -> None:
        try:
            body = msgspec.json.decode(await read_body(receive), type=dict[str, object])
            request = msgspec.convert(body, _Request)
        except msgspec.DecodeError as exc:
            await send_json(send, 400, error_body(str(exc), "invalid_request_error", None))
            return
        stream = bool(request.stream)
        call = FakeCall(model=request.model, stream=stream, headers=headers, body=body, query=query)
        self.calls.append(call)
        behaviour = parse_behaviour(request.model)
        await self._wait(behaviour)
        refused = self._azure_refusal(headers, query) if behaviour.azure else None
        if (status := refused or behaviour.error) is not None:
            await send_json(send, status, *error_answer(status, behaviour.retry_after))
            return
        answer = _answer(request, behaviour, headers)
        completion_id, model = f"chatcmpl-fake{len(self.calls)}", request.model + MODEL_SUFFIX
        if not stream or behaviour.redirect is not None:
            await _send_whole(send, behaviour, _completion_body(completion_id, model, answer))
            return
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        events = _stream_events(completion_id, model, answer, include_usage, behaviour.cut)
        delay = behaviour.chunk_delay_ms / 1000
        await self._stream(receive, send, events, delay, behaviour.cut is None)

    async def _wait(self, behaviour: Behaviour) -> None:
        """Hold or slow the answer as the model name asks."""
        if behaviour.held:
            await asyncio.to_thread(self.released.wait)
        if behaviour.slow_ms:
            await asyncio.sleep(behaviour.slow_ms / 1000)

    def _azure_refusal(self, headers: dict[str, str], query: str) -> int | None:
        """Azure's status for a request without its key (401) or its ``api-version`` (404)."""
        if headers.get("api-key") != self.azure_key:
            return 401
        return None if parse_qs(query).get("api-version") else 404

    async def _responses(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = msgspec.json.decode(await read_body(receive), type=dict[str, object])
        model, stream = str(body.get("model", "")), body.get("stream") is True
        self.responses_calls.append(
            FakeCall(model=model, stream=stream, headers=headers, body=body)
        )
        behaviour = parse_behaviour(model)
        await self._wait(behaviour)
        if (refused := openai_responses.refusal(body)) is not None:
            await send_json(send, 400, refused)
            return
        if behaviour.error is not None:
            await send_json(
                send, behaviour.error, *error_answer(behaviour.error, behaviour.retry_after)
            )
            return
        answer = openai_responses.response_body(body, behaviour, len(self.responses_calls))
        if not stream:
            await send_json(send, 200, msgspec.json.encode(answer), cut=behaviour.cut is not None)
            return
        events = openai_responses.stream_events(answer, behaviour.cut)
        delay = behaviour.chunk_delay_ms / 1000
        await self._stream(receive, send, events, delay, behaviour.cut is None)

    async def _embeddings(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = msgspec.json.decode(await read_body(receive), type=dict[str, object])
        model = str(body.get("model", ""))
        self.embedding_calls.append(FakeCall(model=model, stream=False, headers=headers, body=body))
        behaviour = parse_behaviour(model)
        await self._wait(behaviour)
        if behaviour.error is not None:
            await send_json(
                send, behaviour.error, *error_answer(behaviour.error, behaviour.retry_after)
            )
            return
        reported = behaviour.reported[0] if behaviour.reported else None
        answer = embeddings_body(
            body, model, floats=behaviour.floats, usage=behaviour.usage, reported=reported
        )
        await send_json(send, 200, answer)


async def _send_whole(send: Send, behaviour: Behaviour, body: bytes) -> None:
    """A plain answer: as asked, redirected, cut, or chunked with no length."""
    if behaviour.redirect is not None:
        await send_json(send, behaviour.redirect, body, [(b"location", b"http://elsewhere.test/")])
    elif behaviour.chunked:
        head = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for start in range(0, len(body), 16 * 1024):
            piece = body[start : start + 16 * 1024]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await send_json(send, 200, body, cut=behaviour.cut is not None)


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "lowart-fake"}
