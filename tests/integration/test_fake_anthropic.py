"""The fake Anthropic upstream as the official SDK sees it, plus its raw wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam

from lowart.formats.sse import SSEEvent, SSEParser
from lowart.testing.anthropic_fake import FakeAnthropic, parse_anthropic_behaviour
from lowart.testing.server import ThreadedServer, run_in_thread, serve_fake

SYSTEM = "be brief"
MESSAGES: list[MessageParam] = [{"role": "user", "content": "say hi please"}]
TOOLS: list[ToolParam] = [{"name": "lookup_weather", "input_schema": {"type": "object"}}]
HEADERS = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
BODY = {"model": "ok", "max_tokens": 100, "system": SYSTEM, "messages": MESSAGES}


@pytest.fixture
def fake() -> Iterator[tuple[FakeAnthropic, ThreadedServer]]:
    app = FakeAnthropic()
    with run_in_thread(app) as server:
        yield app, server


@pytest.fixture
def client(fake: tuple[FakeAnthropic, ThreadedServer]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake[1].base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


def _create(client: anthropic.Anthropic, model: str, **extra: object) -> anthropic.types.Message:
    return client.messages.create(  # type: ignore[call-overload, no-any-return]
        model=model, max_tokens=100, system=SYSTEM, messages=MESSAGES, **extra
    )


def _events(content: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return [*parser.feed(content), *parser.close()]


def _types(events: list[SSEEvent]) -> list[str]:
    return [json.loads(event.data)["type"] for event in events]


def test_plain_answer(
    client: anthropic.Anthropic, fake: tuple[FakeAnthropic, ThreadedServer]
) -> None:
    message = _create(client, "ok")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from fake: say hi please"  # type: ignore[union-attr]
    assert (message.stop_reason, message.model) == ("end_turn", "ok-20240101")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 6)
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0
    assert message._request_id == "req_fake_1"
    call = fake[0].calls[-1]
    assert (call["model"], call["stream"]) == ("ok", False)
    assert call["headers"]["authorization"] == "Bearer x"
    assert "anthropic-version" in call["headers"]
    assert call["body"]["messages"] == MESSAGES


def test_stream_helper(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="ok", max_tokens=100, system=SYSTEM, messages=MESSAGES
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from fake: say hi please"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 6)


def test_tools_whole_and_streamed(client: anthropic.Anthropic) -> None:
    whole = _create(client, "tools", tools=TOOLS)
    with client.messages.stream(
        model="claude-x:tools", max_tokens=100, messages=MESSAGES, tools=TOOLS
    ) as stream:
        streamed = stream.get_final_message()
    for message in (whole, streamed):
        assert message.stop_reason == "tool_use"
        text, tool = message.content
        assert text.type == "text"
        assert text.text == "Let me check."
        assert tool.type == "tool_use"
        assert (tool.id, tool.name, tool.input) == (
            "toolu_fake_1",
            "lookup_weather",
            {"city": "Paris"},
        )


def test_tool_result_round_trip(client: anthropic.Anthropic) -> None:
    first = _create(client, "tools")
    assert first.content[1].name == "get_weather"  # type: ignore[union-attr]
    follow_up: list[MessageParam] = [
        *MESSAGES,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_fake_1", "content": "18C"},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]
    second = client.messages.create(model="tools", max_tokens=100, messages=follow_up)
    assert second.content[0].text == "Tool said: 18C"  # type: ignore[union-attr]
    assert second.stop_reason == "end_turn"


def test_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        _create(client, "error-400")
    assert "fake bad request" in bad.value.message
    assert bad.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "fake bad request"},
    }
    with pytest.raises(anthropic.RateLimitError) as limited:
        _create(client, "error-429")
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.request_id is not None
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        _create(client, "claude-x:error-529")
    assert isinstance(overloaded.value, anthropic.InternalServerError)
    assert overloaded.value.status_code == 529
    with pytest.raises(anthropic.InternalServerError):
        _create(client, "error-504")


def test_midstream_error(client: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="midstream_error-2", max_tokens=10, messages=MESSAGES) as s,
    ):
        seen.extend(s.text_stream)
    assert seen == ["Hello ", "from "]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_count_tokens_and_models(
    client: anthropic.Anthropic, fake: tuple[FakeAnthropic, ThreadedServer]
) -> None:
    counted = client.messages.count_tokens(model="ok", system=SYSTEM, messages=MESSAGES)
    assert counted.input_tokens == 5
    assert fake[0].counted[-1]["body"]["system"] == SYSTEM
    assert fake[0].calls == []
    models = list(client.models.list())
    assert [model.id for model in models] == ["ok", "tools", "nousage", "echo_headers"]
    assert models[0].created_at.year == 2025
    assert client.models.retrieve("claude-x").id == "claude-x"


def test_cache_and_reported_usage(client: anthropic.Anthropic) -> None:
    whole = _create(client, "cache-100-20:usage-m5-10")
    with client.messages.stream(
        model="cache-100-20", max_tokens=100, system=SYSTEM, messages=MESSAGES
    ) as stream:
        streamed = stream.get_final_message()
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (-5, 10)
    for usage in (whole.usage, streamed.usage):
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (100, 20)
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (5, 6)


def test_echo_headers(client: anthropic.Anthropic) -> None:
    message = _create(client, "echo_headers", extra_headers={"X-Custom": "yes"})
    echoed = json.loads(message.content[0].text)  # type: ignore[union-attr]
    assert echoed["x-custom"] == "yes"
    assert echoed["authorization"] == "Bearer x"


def test_request_validation(fake: tuple[FakeAnthropic, ThreadedServer]) -> None:
    no_max = {key: value for key, value in BODY.items() if key != "max_tokens"}
    with httpx.Client(base_url=fake[1].base_url) as http:
        missing_max = http.post("/v1/messages", json=no_max, headers=HEADERS)
        no_key = http.post("/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"})
        no_version = http.post("/v1/messages", json=BODY, headers={"authorization": "Bearer x"})
        bad_json = http.post("/v1/messages", content=b"{nope", headers=HEADERS)
        no_route = http.get("/v1/nothing", headers=HEADERS)
    assert (missing_max.status_code, missing_max.json()["error"]["type"]) == (
        400,
        "invalid_request_error",
    )
    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication_error")
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]
    assert bad_json.status_code == 400
    assert (no_route.status_code, no_route.json()["error"]["type"]) == (404, "not_found_error")
    assert all(r.headers["request-id"].startswith("req_fake_") for r in (no_key, no_route))


def test_stream_grammar(fake: tuple[FakeAnthropic, ThreadedServer]) -> None:
    body = BODY | {"model": "tools:chunkdelay-1", "stream": True, "tools": TOOLS}
    with httpx.Client(base_url=fake[1].base_url) as http:
        response = http.post("/v1/messages", json=body, headers=HEADERS)
    assert response.headers["content-type"] == "text/event-stream"
    assert b"\r" not in response.content
    events = _events(response.content)
    assert [event.event for event in events] == _types(events)
    assert _types(events) == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(event.data) for event in events]
    assert data[0]["message"]["usage"]["output_tokens"] == 1
    assert data[1]["content_block"] == {"type": "text", "text": ""}
    assert data[7]["content_block"]["input"] == {}
    fragments = [d["delta"]["partial_json"] for d in data[8:11]]
    assert fragments[0] == ""
    assert "".join(fragments) == '{"city": "Paris"}'
    assert [d["index"] for d in data if "index" in d] == [0] * 5 + [1] * 5
    assert data[-2]["usage"] == {"output_tokens": 6}


def test_cut_and_nousage(fake: tuple[FakeAnthropic, ThreadedServer]) -> None:
    with httpx.Client(base_url=fake[1].base_url, headers=HEADERS) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/v1/messages", json=BODY | {"model": "cut-1"})
        with http.stream(
            "POST", "/v1/messages", json=BODY | {"model": "cut-2", "stream": True}
        ) as r:
            received = bytearray()
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in r.iter_bytes():
                    received += chunk
        nousage = http.post("/v1/messages", json=BODY | {"model": "nousage", "stream": True})
    cut = _events(bytes(received))
    assert _types(cut) == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 2,
    ]
    data = [json.loads(event.data) for event in _events(nousage.content)]
    assert data[0]["message"]["usage"]["input_tokens"] == 0
    assert data[-2]["type"] == "message_delta"
    assert "usage" not in data[-2]


async def test_client_leaving_is_counted() -> None:
    app = FakeAnthropic()
    body = BODY | {"model": "chunkdelay-200", "stream": True}
    async with (
        await serve_fake(app) as server,
        httpx.AsyncClient(headers=HEADERS) as http,
        http.stream("POST", server.base_url + "/v1/messages", json=body) as response,
    ):
        async for _ in response.aiter_bytes():
            break
    # leaving the server's block waited for its request tasks, so the count is final
    assert (app.disconnects, app.requests) == (1, 1)


def test_behaviour_parsing() -> None:
    behaviour = parse_anthropic_behaviour("claude-x:tools:cache-m1-20:midstream_error-3:slow-5")
    assert behaviour.common.tools
    assert behaviour.common.slow_ms == 5
    assert behaviour.cache == (-1, 20)
    assert behaviour.midstream_error == 3
    plain = parse_anthropic_behaviour("ok:cache-1")
    assert (plain.cache, plain.midstream_error) == ((0, 0), None)
