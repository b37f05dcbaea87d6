"""The fake OpenAI upstream's Responses API as the official SDK sees it: whole and streamed,
text, function calls, reasoning, a length stop and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseInputParam, ToolParam

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
