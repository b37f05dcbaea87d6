"""A fake Anthropic Messages upstream, a raw ASGI app whose behaviour is chosen by the model name.

Routes: ``POST /v1/messages``, ``POST /v1/messages/count_tokens`` (``{"input_tokens": <words>}``),
``GET /v1/models`` (one page, ``has_more: false``) and ``GET /v1/models/{id}`` (each also without
``/v1``); others get a 404 ``not_found_error``. Every request needs ``x-api-key`` or
``Authorization`` (else 401 ``authentication_error``) and ``anthropic-version`` (else 400), and a
Messages request needs ``max_tokens`` (else 400 ``invalid_request_error``). Responses carry
``request-id``; their ``model`` is the requested one plus ``-20240101``, as a vendor reports its
dated snapshot. The requested ``model`` is split on ``:`` into options, as in the OpenAI fake;
unknown parts are ignored, so ``claude-x:tools:slow-200`` combines freely:

- ``ok`` or anything else: the text ``"Hello from fake: " + <last user message text>``;
  ``input_tokens`` counts the whitespace-separated words of the system prompt and of all message
  texts, tool results included (at least 1), ``output_tokens`` those of the answer, and the cache
  counts are 0. Streams follow Anthropic's (see ``anthropic_stream``): ``message_start`` with
  the input usage and ``output_tokens: 1``, a ``text_delta`` per word, then ``message_delta``
  with the stop reason and ``{"output_tokens": N}``, then ``message_stop``.
- ``error-<status>`` (400-599): that status with an Anthropic error body whose type is
  Anthropic's (``error-400`` is ``invalid_request_error`` "fake bad request", ``error-429`` a
  ``rate_limit_error`` with ``retry-after: 7``, ``error-529`` an ``overloaded_error``).
- ``slow-<ms>``: wait before answering (before a stream's first byte); ``chunkdelay-<ms>``:
  wait between stream events.
- ``cut-<n>``: a stream sends ``message_start`` and everything up to n deltas, then drops the
  connection; a plain answer sends its headers and half its body, then drops it.
- ``midstream_error-<n>``: a stream sends the same, then ``event: error`` with an
  ``overloaded_error`` and ends normally (the HTTP status stays 200); a plain answer is whole.
- ``tools``: a text block "Let me check." and a ``tool_use`` block ``toolu_fake_1`` calling the
  request's first tool (or ``get_weather``) with ``{"city": "Paris"}``, ``stop_reason:
  "tool_use"``. If the last message is a user turn that begins with a ``tool_result``, the answer
  is the text ``"Tool said: <its text>"`` instead.
- ``nousage``: Anthropic always reports usage, so this reports zeros everywhere and leaves
  ``usage`` out of ``message_delta``. The official Python stream helper fails on such a stream.
- ``usage-<in>-<out>``: report these as ``input_tokens``/``output_tokens``;
  ``cache-<read>-<creation>``: report these as ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``. An ``m`` marks a negative (``usage-m5-10``).
- ``echo_headers``: the answer is the JSON object of the request headers (lowercased names).

On a ``FakeAnthropic``, ``calls`` records each Messages request that passed the header checks
and parsed, ``counted`` each such count_tokens request, ``requests`` counts HTTP requests and
``disconnects`` counts streams the client left early.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgspec
from starlette.types import Receive, Scope, Send

from lowart.formats.anthropic import anthropic_type_for_status, error_payload
from lowart.testing.anthropic_stream import (
    Answer,
    Block,
    StreamPlan,
    TextBlock,
    ToolUseBlock,
    Usage,
    message_body,
    stream_events,
)
from lowart.testing.asgi import FakeUpstream, Headers, option_number, read_body, send_json
from lowart.testing.openai_fake import Behaviour, FakeCall, parse_behaviour

MODEL_SUFFIX = "-20240101"
CREATED_AT = "2025-01-01T00:00:00Z"
MODEL_IDS = ("ok", "tools", "nousage", "echo_headers")
TOOL_INPUT = '{"city": "Paris"}'

_ERROR_MESSAGES = {400: "fake bad request", 429: "fake rate limit exceeded", 529: "Overloaded"}


@dataclass(frozen=True, slots=True)
class AnthropicBehaviour:
    """The OpenAI fake's options plus the Anthropic-only ``cache-`` and ``midstream_error-``."""

    common: Behaviour
    cache: tuple[int, int] = (0, 0)
    midstream_error: int | None = None


def parse_anthropic_behaviour(model: str) -> AnthropicBehaviour:
    """Read the ``:``-separated options of a model name; of a repeated option the last wins."""
    found = {name: argument for name, _, argument in (o.partition("-") for o in model.split(":"))}
    read, _, creation = found.get("cache", "").partition("-")
    cache_read, cache_creation = option_number(read), option_number(creation)
    cache = (0, 0)
    if cache_read is not None and cache_creation is not None:
        cache = (cache_read, cache_creation)
    after = option_number(found.get("midstream_error"))
    midstream = None if after is None else max(after, 0)
    return AnthropicBehaviour(parse_behaviour(model), cache, midstream)


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    content: str | list[_Block] | None = None


class _Message(msgspec.Struct):
    role: str = ""
    content: str | list[_Block] = ""


class _Tool(msgspec.Struct):
    name: str = ""


class _Request(msgspec.Struct):
    model: str
    messages: list[_Message]
    system: str | list[_Block] | None = None
    max_tokens: int | None = None
    stream: bool | None = None
    tools: list[_Tool] | None = None


def _text(content: str | list[_Block] | None) -> str:
    """All text of a content, including that of nested tool results."""
    if not isinstance(content, list):
        return content or ""
    return " ".join(filter(None, (block.text or _text(block.content) for block in content)))


def _input_words(request: _Request) -> int:
    texts = [_text(request.system), *(_text(message.content) for message in request.messages)]
    return max(1, sum(len(text.split()) for text in texts))


def _tool_result(message: _Message | None) -> str | None:
    """The text of the tool result a user turn begins with, if it does."""
    if message is None or message.role != "user" or not isinstance(message.content, list):
        return None
    first = message.content[0] if message.content else None
    return _text(first.content) if first is not None and first.type == "tool_result" else None


def _blocks(request: _Request, behaviour: Behaviour, headers: dict[str, str]) -> tuple[Block, ...]:
    last = request.messages[-1] if request.messages else None
    result = _tool_result(last) if behaviour.tools else None
    if behaviour.echo_headers:
        return (TextBlock(msgspec.json.encode(headers).decode()),)
    if result is not None:
        return (TextBlock("Tool said: " + result),)
    if behaviour.tools:
        first = next((tool.name for tool in request.tools or () if tool.name), "get_weather")
        return TextBlock("Let me check."), ToolUseBlock("toolu_fake_1", first, TOOL_INPUT)
    users = [message for message in request.messages if message.role == "user"]
    return (TextBlock("Hello from fake: " + (_text(users[-1].content) if users else "")),)


def _answer(request: _Request, behaviour: AnthropicBehaviour, headers: dict[str, str]) -> Answer:
    """The blocks to send, with the usage to report."""
    common = behaviour.common
    blocks = _blocks(request, common, headers)
    generated = [b.text if isinstance(b, TextBlock) else f"{b.name} {b.input_json}" for b in blocks]
    output = sum(len(text.split()) for text in generated)
    in_out = common.reported or (_input_words(request), output)
    usage = Usage(*in_out, *behaviour.cache) if common.usage else Usage(0, 0)
    stop = "tool_use" if any(isinstance(block, ToolUseBlock) for block in blocks) else "end_turn"
    return Answer(blocks, stop, usage, report_usage=common.usage)


class FakeAnthropic(FakeUpstream):
    """The fake Anthropic upstream as an ASGI app; its request log lives on the instance."""

    request_id_header = b"request-id"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[FakeCall] = []
        self.counted: list[FakeCall] = []

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        refusal = _refusal(headers)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        method, path = scope["method"], scope["path"].removeprefix("/v1")
        if method == "POST" and path in ("/messages", "/messages/count_tokens"):
            await self._post(receive, send, headers, path == "/messages")
        elif method == "GET" and path == "/models":
            models = [_model(model_id) for model_id in MODEL_IDS]
            page = {"data": models, "has_more": False}
            page |= {"first_id": MODEL_IDS[0], "last_id": MODEL_IDS[-1]}
            await send_json(send, 200, msgspec.json.encode(page))
        elif method == "GET" and path.startswith("/models/"):
            await send_json(send, 200, msgspec.json.encode(_model(path.removeprefix("/models/"))))
        else:
            await _send_error(send, 404, "not_found_error", f"no route {method} {path}")

    async def _post(
        self, receive: Receive, send: Send, headers: dict[str, str], messages: bool
    ) -> None:
        """Parse and record a Messages or count_tokens request, then answer it."""
        try:
            body = msgspec.json.decode(await read_body(receive), type=dict[str, object])
            request = msgspec.convert(body, _Request)
        except msgspec.DecodeError as exc:  # also the ValidationError of convert
            await _send_error(send, 400, "invalid_request_error", str(exc))
            return
        call = FakeCall(
            model=request.model, stream=bool(request.stream), headers=headers, body=body
        )
        if not messages:
            self.counted.append(call)
            await send_json(send, 200, msgspec.json.encode({"input_tokens": _input_words(request)}))
            return
        self.calls.append(call)
        if request.max_tokens is None:
            await _send_error(send, 400, "invalid_request_error", "max_tokens: Field required")
            return
        await self._messages(receive, send, request, headers)

    async def _messages(
        self, receive: Receive, send: Send, request: _Request, headers: dict[str, str]
    ) -> None:
        behaviour = parse_anthropic_behaviour(request.model)
        common = behaviour.common
        if common.slow_ms:
            await asyncio.sleep(common.slow_ms / 1000)
        if common.error is not None:
            await _send_error(send, *_error(common.error))
            return
        answer = _answer(request, behaviour, headers)
        message_id, model = f"msg_fake{len(self.calls)}", request.model + MODEL_SUFFIX
        if not request.stream:
            await send_json(
                send, 200, message_body(message_id, model, answer), cut=common.cut is not None
            )
            return
        plan = StreamPlan(common.cut, behaviour.midstream_error)
        events, complete = stream_events(message_id, model, answer, plan)
        await self._stream(receive, send, events, common.chunk_delay_ms / 1000, complete)


def _refusal(headers: dict[str, str]) -> tuple[int, str, str] | None:
    """The error for a request without credentials or without ``anthropic-version``."""
    if not headers.get("x-api-key") and not headers.get("authorization"):
        return 401, "authentication_error", "x-api-key header is required"
    if not headers.get("anthropic-version"):
        return 400, "invalid_request_error", "anthropic-version: header is required"
    return None


def _error(status: int) -> tuple[int, str, str, Headers]:
    """The error for an ``error-<status>`` model, with ``retry-after`` on a 429."""
    # Anthropic documents no 503, so unlike the gateway the fake calls it a plain api_error
    type_ = "api_error" if status == 503 else anthropic_type_for_status(status)
    headers = [(b"retry-after", b"7")] if status == 429 else ()
    return status, type_, _ERROR_MESSAGES.get(status, f"fake error {status}"), headers


async def _send_error(
    send: Send, status: int, type_: str, message: str, extra: Headers = ()
) -> None:
    await send_json(send, status, msgspec.json.encode(error_payload(type_, message)), extra)


def _model(model_id: str) -> dict[str, object]:
    display = f"Fake {model_id}"
    return {"type": "model", "id": model_id, "display_name": display, "created_at": CREATED_AT}
