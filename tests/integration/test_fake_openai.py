"""The fake OpenAI upstream as the official SDK sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from lowart.formats.openai import usage_from_body
from lowart.formats.sse import SSEParser
from lowart.testing.openai_fake import FakeOpenAI, parse_behaviour
from lowart.testing.server import RunningServer, run_in_thread, serve_fake

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "say hi please"},
]
TOOLS: list[openai.types.chat.ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "lookup_weather", "parameters": {"type": "object"}}}
]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, RunningServer]]:
    app = FakeOpenAI()
    server = await serve_fake(app)
    yield app, server
    await server.stop()


@pytest.fixture
async def client(
    fake: tuple[FakeOpenAI, RunningServer],
) -> AsyncIterator[openai.AsyncOpenAI]:
    base_url = fake[1].base_url + "/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


async def test_plain_answer(
    client: openai.AsyncOpenAI, fake: tuple[FakeOpenAI, RunningServer]
) -> None:
    completion = await client.chat.completions.create(model="ok", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from fake: say hi please"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "ok-2024-01-01"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 6)
    assert completion.usage.total_tokens == 11
    call = fake[0].calls[-1]
    assert (call["model"], call["stream"]) == ("ok", False)
    assert call["headers"]["authorization"] == "Bearer x"
    assert call["body"]["messages"] == MESSAGES


async def test_stream_with_usage_last(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="ok", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 6)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello from fake: say hi please"
    assert [c.choices[0].delta.role for c in chunks[:2]] == ["assistant", None]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert len({chunk.id for chunk in chunks}) == 1


async def test_n_choices_whole_and_streamed(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="ok", messages=MESSAGES, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {"Hello from fake: say hi please"}
    assert completion.usage is not None and completion.usage.completion_tokens == 3 * 6
    stream = await client.chat.completions.create(
        model="ok", messages=MESSAGES, n=2, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == ["Hello from fake: say hi please"] * 2
    finishes = [c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [0, 1]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2 * 6


async def test_stream_without_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="ok", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)


async def test_tool_calls_through_stream_helper(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(
        model="tools", messages=MESSAGES, tools=TOOLS, stream_options={"include_usage": True}
    ) as stream:
        completion = await stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_fake_1", "lookup_weather", '{"city": "Paris"}'),
        ("call_fake_2", "get_time", "{}"),
    ]
    assert completion.usage is not None


async def test_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="tools", messages=MESSAGES)
    calls = first.choices[0].message.tool_calls or []
    assert [call.id for call in calls] == ["call_fake_1", "call_fake_2"]
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    follow_up: list[openai.types.chat.ChatCompletionMessageParam] = [
        *MESSAGES,
        first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": "call_fake_1", "content": "18C"},
    ]
    second = await client.chat.completions.create(model="tools", messages=follow_up)
    assert second.choices[0].message.content == "Tool said: 18C"


async def test_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="error-400", messages=MESSAGES)
    assert "fake bad request" in caught.value.message
    assert caught.value.param == "messages"
    assert caught.value.type == "invalid_request_error"


async def test_rate_limited(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="error-429", messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.request_id is not None


async def test_server_error_and_models(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o:error-503", messages=MESSAGES)
    models = await client.models.list()
    assert "ok" in [model.id for model in models.data]


async def test_reported_usage_and_nousage(client: openai.AsyncOpenAI) -> None:
    odd = await client.chat.completions.create(model="usage-m5-10", messages=MESSAGES)
    assert odd.usage is not None
    assert (odd.usage.prompt_tokens, odd.usage.completion_tokens) == (-5, 10)
    none = await client.chat.completions.create(model="nousage", messages=MESSAGES)
    assert none.usage is None
    stream = await client.chat.completions.create(
        model="nousage", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert all([chunk.usage is None async for chunk in stream])


async def test_echo_headers(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="echo_headers", messages=MESSAGES, extra_headers={"X-Custom": "yes"}
    )
    assert '"x-custom":"yes"' in (completion.choices[0].message.content or "")


async def test_cut_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="cut-2", messages=MESSAGES, stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert seen == ["", "Hello ", "from "]


async def test_cut_body_and_raw_stream(fake: tuple[FakeOpenAI, RunningServer]) -> None:
    url = fake[1].base_url + "/chat/completions"
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(url, json={"model": "cut-1", "messages": MESSAGES})
        body = {"model": "slow-10:chunkdelay-1", "messages": MESSAGES, "stream": True}
        response = await http.post(url, json=body)
    events = SSEParser().feed(response.content)
    assert events[-1].data == b"[DONE]"
    assert response.headers["content-type"] == "text/event-stream"


async def test_invalid_body_and_unknown_route(fake: tuple[FakeOpenAI, RunningServer]) -> None:
    async with httpx.AsyncClient(base_url=fake[1].base_url) as http:
        bad = await http.post("/v1/chat/completions", content=b"{not json")
        missing = await http.get("/v1/nothing")
        one = await http.get("/v1/models/whatever")
    assert bad.status_code == 400
    assert missing.status_code == 404
    assert one.json()["id"] == "whatever"
    assert usage_from_body(bad.content) is None


def test_behaviour_parsing() -> None:
    behaviour = parse_behaviour("gpt-4o:tools:slow-20:chunkdelay-3:cut-4:usage-m5-99999999999")
    assert behaviour.tools and behaviour.usage
    assert (behaviour.slow_ms, behaviour.chunk_delay_ms, behaviour.cut) == (20, 3, 4)
    assert behaviour.reported == (-5, 99999999999)
    assert parse_behaviour("error-42").error is None
    assert parse_behaviour("error-418").error == 418
    assert not parse_behaviour("nousage").usage


def test_threaded_server_with_sync_sdk() -> None:
    with run_in_thread(FakeOpenAI()) as server:
        sdk = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        with sdk:
            completion = sdk.chat.completions.create(model="ok", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from fake: say hi please"
    assert not server.thread.is_alive()
