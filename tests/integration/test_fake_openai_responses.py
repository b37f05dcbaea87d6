"""The fake OpenAI upstream's Responses API as the official SDK sees it: whole and streamed,
text, function calls, reasoning, a length stop and errors; and the gateway's translators, over
the fake's chat, answering as it does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import (
    Response,
    ResponseInputParam,
    ResponseStreamEvent,
    ToolParam,
)

from lowart.formats.responses_output import ChatChunksToResponses
from lowart.formats.responses_request import check_responses, input_items, responses_to_chat
from lowart.formats.sse import SSEParser
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import RunningServer, serve_fake

TOOLS: list[ToolParam] = [
    {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": None}
]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, RunningServer]]:
    app = FakeOpenAI()
    server = await serve_fake(app)
    yield app, server
    await server.stop()


@pytest.fixture
async def client(fake: tuple[FakeOpenAI, RunningServer]) -> AsyncIterator[openai.AsyncOpenAI]:
    base_url = fake[1].base_url + "/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


async def test_plain_string_whole_and_streamed(
    client: openai.AsyncOpenAI, fake: tuple[FakeOpenAI, RunningServer]
) -> None:
    whole = await client.responses.create(model="ok", input="say hi please", instructions="brief")
    assert whole.output_text == "Hello from fake: say hi please"
    assert whole.status == "completed" and whole.model == "ok-2024-01-01"
    assert whole.usage is not None
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (4, 6)
    assert whole.usage.total_tokens == 10
    async with client.responses.stream(model="ok", input="say hi please") as stream:
        kinds = [event.type async for event in stream]
        streamed = await stream.get_final_response()
    assert streamed.output_text == whole.output_text
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 6  # one per word
    assert streamed.usage is not None and streamed.usage.input_tokens == 3
    calls = fake[0].responses_calls
    assert [(call["model"], call["stream"]) for call in calls] == [("ok", False), ("ok", True)]
    assert calls[0]["body"]["instructions"] == "brief"
    assert fake[0].calls == []  # no chat request


async def test_function_call_round_trip(client: openai.AsyncOpenAI) -> None:
    first = await client.responses.create(model="tools", input="weather?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_fake_1", "lookup", '{"city": "Paris"}'),
        ("call_fake_2", "get_time", "{}"),
    ]
    assert first.output_text == ""
    follow: ResponseInputParam = [
        {"role": "user", "content": "weather?"},
        *[c.model_dump(exclude_none=True) for c in calls],  # type: ignore[misc]
        {"type": "function_call_output", "call_id": "call_fake_1", "output": "sunny"},
    ]
    second = await client.responses.create(model="tools", input=follow, tools=TOOLS)
    assert second.output_text == "Tool said: sunny"
    async with client.responses.stream(model="tools", input="weather?", tools=TOOLS) as stream:
        streamed = await stream.get_final_response()
    names = [item.name for item in streamed.output if item.type == "function_call"]
    assert names == ["lookup", "get_time"]


async def test_reasoning_and_length(client: openai.AsyncOpenAI) -> None:
    reasoned = await client.responses.create(model="reasoning", input="why so")
    assert [item.type for item in reasoned.output] == ["reasoning", "message"]
    assert reasoned.usage is not None
    assert reasoned.usage.output_tokens_details.reasoning_tokens == 4  # "Thinking about: why so"
    assert reasoned.usage.output_tokens == 4 + 5
    async with client.responses.stream(model="reasoning", input="why so") as stream:
        final = await stream.get_final_response()
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == "Thinking about: why so"
    cut = await client.responses.create(model="length", input="a long question")
    assert (cut.status, cut.output_text) == ("incomplete", "Hello from fake:")
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    stream_cm = client.responses.stream(model="length", input="a long question")
    async with stream_cm as events:
        kinds = [event.type async for event in events]
    assert kinds[-1] == "response.incomplete"


async def test_errors_and_refusals(
    client: openai.AsyncOpenAI, fake: tuple[FakeOpenAI, RunningServer]
) -> None:
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model="error-429", input="x")
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="ok", input="x", previous_response_id="resp_1")
    assert "fake keeps no responses" in str(refused.value)
    assert len(fake[0].responses_calls) == 2


async def test_cut_stream_and_usage_options(fake: tuple[FakeOpenAI, RunningServer]) -> None:
    url = fake[1].base_url + "/responses"  # the route without /v1 too
    async with httpx.AsyncClient() as http:
        body = {"model": "cut-3", "input": "hi there", "stream": True}
        received: list[bytes] = []
        async with http.stream("POST", url, json=body) as answer:
            with pytest.raises(httpx.RemoteProtocolError):
                async for piece in answer.aiter_bytes():
                    received.append(piece)
        text = b"".join(received).decode()
        plain = await http.post(url, json={"model": "usage-7-9", "input": "hi"})
        bare = await http.post(url, json={"model": "nousage", "input": "hi"})
    assert text.count("event: ") == 4 and "response.completed" not in text
    usage = Response.model_validate(plain.json()).usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (7, 9)
    assert Response.model_validate(bare.json()).usage is None


async def _via_chat(http: httpx.AsyncClient, base: str, request: dict[str, Any]) -> Response:
    """The Responses request asked of the chat fake through the gateway's translators: the
    request translated, the chat stream read off the socket and translated back."""
    check_responses(request)
    chat = responses_to_chat(request, input_items(request))
    translator = ChatChunksToResponses(response_id="resp_t", created_at=1, request=request)
    parser, events = SSEParser(), []
    async with http.stream("POST", base + "/v1/chat/completions", json=chat) as answer:
        async for piece in answer.aiter_bytes():
            for sse in parser.feed(piece):
                if sse.data != b"[DONE]":
                    events.append(translator.feed(json.loads(sse.data)))
    events.append(translator.finish())
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    kinds = []
    for sse in SSEParser().feed(b"".join(events)):
        event = construct_type(type_=ResponseStreamEvent, value=json.loads(sse.data))
        kinds += [(handled.type, handled) for handled in state.handle_event(event)]
    kind, completed = kinds[-1]
    assert kind == "response.completed"  # its response is what get_final_response returns
    return Response.model_validate(completed.response.model_dump())


@pytest.mark.parametrize("model", ["ok", "tools"])
async def test_translated_chat_answers_as_the_responses_fake(
    client: openai.AsyncOpenAI, fake: tuple[FakeOpenAI, RunningServer], model: str
) -> None:
    """Two independent fakes, one answer: what the chat fake says, translated both ways, is
    what the Responses fake says directly."""
    follow: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_fake_1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_fake_1", "output": "sunny and warm"},
    ]
    async with httpx.AsyncClient() as http:
        for items in ("weather in Paris?", follow):
            request = {"model": model, "input": items, "instructions": "be brief"}
            request |= {"tools": TOOLS, "stream": True}
            translated = await _via_chat(http, fake[1].base_url, request)
            direct = await client.responses.create(**{**request, "stream": False})
            assert translated.output_text == direct.output_text
            assert translated.usage is not None and direct.usage is not None
            assert translated.usage.input_tokens == direct.usage.input_tokens
            assert translated.usage.output_tokens == direct.usage.output_tokens
            pairs = [
                [(i.call_id, i.name, i.arguments) for i in r.output if i.type == "function_call"]
                for r in (translated, direct)
            ]
            assert pairs[0] == pairs[1]
    assert fake[0].calls[-1]["body"]["messages"][0] == {"role": "system", "content": "be brief"}
