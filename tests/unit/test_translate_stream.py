"""The two streaming state machines, checked against the official SDKs' parsers.

Bytes produced for OpenAI clients go through ``openai.Stream`` and ``ChatCompletionStreamState``;
bytes for Anthropic clients go through ``anthropic.Stream`` and ``accumulate_event`` (what
``MessageStream`` uses), so what passes here is what the SDKs accept.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import ParsedMessage, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk, ParsedChatCompletion

from lowart.errors import UpstreamError
from lowart.formats.anthropic_tools import ToolNames
from lowart.formats.openai import Usage
from lowart.formats.sse import DONE, SSEEvent, SSEParser
from lowart.formats.translate_stream import PING_COMMENT, AnthropicToOpenAI, OpenAIToAnthropic

CREATED = 1735689600
REQUEST = httpx2.Request("POST", "http://gateway.test/v1/stream")
LONG_NAME = "fetch_the_complete_quarterly_financial_statements_for_the_given_company_" + "z" * 10
EVENT_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)


# ------------------------------------------------------------------- SDK-side readers


def openai_chunks(raw: bytes) -> list[ChatCompletionChunk]:
    """Chunks as openai-python's own stream reads them (it raises on an error chunk)."""
    response = httpx2.Response(200, content=raw, request=REQUEST)
    with openai.OpenAI(api_key="test", base_url="http://gateway.test/v1") as client:
        stream = openai.Stream(cast_to=ChatCompletionChunk, response=response, client=client)
        chunks = list(stream)
    for chunk in chunks:  # the stream builds models without validation; validate them too
        ChatCompletionChunk.model_validate(chunk.to_dict())
    return chunks


def openai_final(raw: bytes) -> ParsedChatCompletion[None]:
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in openai_chunks(raw):
        state.handle_chunk(chunk)
    return state.get_final_completion()


def anthropic_final(raw: bytes) -> ParsedMessage[None]:
    """The final Message as anthropic-python's stream and accumulator build it."""
    response = httpx2.Response(200, content=raw, request=REQUEST)
    snapshot: ParsedMessage[None] | None = None
    json_bufs: dict[int, bytes] = {}
    with anthropic.Anthropic(api_key="test", base_url="http://gateway.test") as client:
        event_type: Any = RawMessageStreamEvent  # a Union alias, which Stream accepts at runtime
        stream: anthropic.Stream[Any] = anthropic.Stream(
            cast_to=event_type, response=response, client=client
        )
        for event in stream:
            EVENT_ADAPTER.validate_python(event.to_dict())
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return snapshot


def anthropic_events(raw: bytes) -> list[dict[str, Any]]:
    """Our Anthropic output as event payloads, after checking the grammar the SDKs rely on."""
    parsed = SSEParser().feed(raw)
    events = [json.loads(event.data) for event in parsed]
    assert [event.event for event in parsed] == [data["type"] for data in events]
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    open_kind: str | None = None
    count = 0
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_kind is None, "blocks must not interleave"
            assert event["index"] == count
            open_kind = event["content_block"]["type"]
            assert event["content_block"] == skeleton(event["content_block"])
            count += 1
        elif event["type"] == "content_block_delta":
            assert open_kind is not None
            assert event["index"] == count - 1
            assert_delta_fits(open_kind, event["delta"])
        else:
            assert event["type"] == "content_block_stop"
            assert event["index"] == count - 1
            open_kind = None
    assert open_kind is None
    return events


def skeleton(block: dict[str, Any]) -> dict[str, Any]:
    empty = {"text": {"text": ""}, "thinking": {"thinking": "", "signature": ""}}
    if block["type"] == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    return {"type": block["type"], **empty[block["type"]]}


def assert_delta_fits(kind: str, delta: dict[str, Any]) -> None:
    field = {"text": "text", "thinking": "thinking", "tool_use": "partial_json"}[kind]
    expected = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
    assert delta["type"] == expected[kind]
    assert delta[field], "empty deltas are never sent"


def data_lines(raw: bytes) -> list[Any]:
    """The JSON of each OpenAI event; ``[DONE]`` stays a string."""
    datas = [event.data for event in SSEParser().feed(raw)]
    return [data.decode() if data == b"[DONE]" else json.loads(data) for data in datas]


# ------------------------------------------------------------------- upstream builders


def sse(name: str, **payload: Any) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (
        name.encode(),
        json.dumps({"type": name, **payload}).encode(),
    )


def message_start(**usage: int) -> bytes:
    usage = {"input_tokens": 25, "output_tokens": 1} | usage
    message: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
    }
    message |= {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    return sse("message_start", message=message)


def text_block(index: int, *texts: str) -> bytes:
    start = sse("content_block_start", index=index, content_block={"type": "text", "text": ""})
    deltas = [
        sse("content_block_delta", index=index, delta={"type": "text_delta", "text": text})
        for text in texts
    ]
    return start + b"".join(deltas) + sse("content_block_stop", index=index)


def tool_block(index: int, call_id: str, name: str, *fragments: str) -> bytes:
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    deltas = [
        sse(
            "content_block_delta",
            index=index,
            delta={"type": "input_json_delta", "partial_json": f},
        )
        for f in fragments
    ]
    start = sse("content_block_start", index=index, content_block=block)
    return start + b"".join(deltas) + sse("content_block_stop", index=index)


def message_end(stop_reason: str, output_tokens: int) -> bytes:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    ending = sse("message_delta", delta=delta, usage={"output_tokens": output_tokens})
    return ending + sse("message_stop")


def translate_anthropic(
    pieces: Iterable[bytes], *, include_usage: bool = True, names: ToolNames | None = None
) -> tuple[bytes, AnthropicToOpenAI]:
    translator = AnthropicToOpenAI(include_usage=include_usage, created=CREATED, names=names)
    parser = SSEParser()
    out = b""
    for piece in pieces:
        for event in parser.feed(piece):
            out += translator.feed(event)
    for event in parser.close():
        out += translator.feed(event)
    return out, translator


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    body = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    return b"data: %s\n\n" % json.dumps(body | {"choices": [choice]} | extra).encode()


def usage_chunk(prompt: int = 40, completion: int = 12, cached: int = 30) -> bytes:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage |= {
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    body = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    return b"data: %s\n\n" % json.dumps(body).encode()


def call_start(index: int, call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    function = {"name": name, "arguments": arguments}
    return {"index": index, "id": call_id, "type": "function", "function": function}


def call_args(index: int, arguments: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": arguments}}


def translate_openai(
    pieces: Iterable[bytes], *, names: ToolNames | None = None
) -> tuple[bytes, OpenAIToAnthropic]:
    translator = OpenAIToAnthropic(model="claude-x", names=names, message_id="msg_gw")
    parser = SSEParser()
    out = b""
    for piece in pieces:
        for event in parser.feed(piece):
            out += translator.feed(event.data)
    for event in parser.close():
        out += translator.feed(event.data)
    return out + translator.finish(), translator


TEXT_STREAM = message_start() + text_block(0, "Hello", ", world") + message_end("end_turn", 7)
TOOL_STREAM = (
    message_start(cache_read_input_tokens=100, cache_creation_input_tokens=4)
    + sse("ping")
    + text_block(0, "Let me check.")
    + tool_block(1, "toolu_a", "get_weather", "", '{"city": "Par', 'is"}')
    + tool_block(2, "toolu_b", LONG_NAME[:55] + "_3a1f2b4c", "{}")
    + message_end("tool_use", 89)
)
OPENAI_STREAM = (
    chunk({"role": "assistant", "content": ""})
    + chunk({"reasoning_content": "Weather, then time."})
    + chunk({"content": "Checking"})
    + chunk({"content": " now."})
    + chunk({"tool_calls": [call_start(0, "call_a", "get_weather")]})
    + chunk({"tool_calls": [call_args(0, '{"city":')]})
    + chunk({"tool_calls": [call_args(0, '"Paris"}')]})
    + chunk({"tool_calls": [call_start(1, "call_b", "get_time", "{}")]})
    + chunk(finish="tool_calls")
    + usage_chunk()
    + b"data: [DONE]\n\n"
)


# ------------------------------------------------------------------- Anthropic → OpenAI


def test_role_only_in_first_delta() -> None:
    out, _ = translate_anthropic([TOOL_STREAM])
    deltas = [choice.delta for c in openai_chunks(out) for choice in c.choices]
    assert deltas[0].role == "assistant"
    assert all(delta.role is None for delta in deltas[1:])
    assert [d for d in data_lines(out)[1:] if isinstance(d, dict) and "role" in str(d)] == []


def test_ping_becomes_sse_comment() -> None:
    translator = AnthropicToOpenAI(include_usage=False, created=CREATED)
    assert translator.feed(SSEEvent("ping", b'{"type": "ping"}')) == PING_COMMENT == b": ping\n\n"
    assert SSEParser().feed(PING_COMMENT) == []  # a comment: no event for any client
    out, _ = translate_anthropic([TOOL_STREAM])
    assert b": ping\n\n" in out
    assert b"event:" not in out
    assert all(isinstance(c, ChatCompletionChunk) for c in openai_chunks(out))


def test_usage_output_tokens_cumulative_replaces() -> None:
    stream = (
        message_start(input_tokens=25, output_tokens=1, cache_read_input_tokens=100)
        + text_block(0, "Hi")
        + sse("message_delta", delta={"stop_reason": None}, usage={"output_tokens": 10})
        + sse(
            "message_delta",
            delta={"stop_reason": "max_tokens"},
            usage={"output_tokens": 89, "input_tokens": 30, "cache_read_input_tokens": None},
        )
        + sse("message_stop")
    )
    out, translator = translate_anthropic([stream])
    assert translator.usage == Usage(prompt_tokens=130, completion_tokens=89, cached_tokens=100)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for parsed in openai_chunks(out):
        state.handle_chunk(parsed)
    snapshot = state.current_completion_snapshot  # final() refuses "length" by design
    assert snapshot.usage is not None
    assert (snapshot.usage.prompt_tokens, snapshot.usage.completion_tokens) == (130, 89)
    assert snapshot.usage.prompt_tokens_details is not None
    assert snapshot.usage.prompt_tokens_details.cached_tokens == 100
    assert snapshot.choices[0].finish_reason == "length"


def test_openai_sdk_accumulates_text_and_parallel_tool_calls() -> None:
    names = ToolNames([LONG_NAME])
    stream = TOOL_STREAM.replace(
        LONG_NAME[:55].encode() + b"_3a1f2b4c", names.short(LONG_NAME).encode()
    )
    out, translator = translate_anthropic([stream], names=names)
    final = openai_final(out)
    message = final.choices[0].message
    assert final.id == "chatcmpl-msg_01"
    assert final.model == "claude-x"
    assert final.created == CREATED
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls]
    assert calls == [
        ("toolu_a", "get_weather", '{"city": "Paris"}'),
        ("toolu_b", LONG_NAME, "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.prompt_tokens == 129
    assert translator.done
    assert translator.error is None


def test_chunks_share_id_and_end_with_usage_then_done() -> None:
    out, _ = translate_anthropic([TOOL_STREAM])
    datas = data_lines(out)
    assert datas[-1] == "[DONE]"
    assert out.endswith(DONE)
    chunks = datas[:-1]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("chatcmpl-msg_01", CREATED, "claude-x", "chat.completion.chunk")
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 89
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert all("error" not in c for c in chunks)


def test_without_include_usage_no_usage_anywhere() -> None:
    out, translator = translate_anthropic([TEXT_STREAM], include_usage=False)
    chunks = data_lines(out)[:-1]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert translator.usage == Usage(25, 7, 0)
    assert openai_final(out).choices[0].message.content == "Hello, world"


def test_empty_partial_json_not_emitted() -> None:
    stream = (
        message_start()
        + tool_block(0, "toolu_a", "f", "", "", '{"a":1}', "")
        + message_end("tool_use", 3)
    )
    out, _ = translate_anthropic([stream])
    argument_chunks = [
        c["choices"][0]["delta"]["tool_calls"][0]["function"]
        for c in data_lines(out)[:-1]
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert argument_chunks == [{"name": "f", "arguments": ""}, {"arguments": '{"a":1}'}]


def test_tool_input_in_block_start_sent_at_stop() -> None:
    block = {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"x": [1, 2]}}
    stream = (
        message_start()
        + sse("content_block_start", index=0, content_block=block)
        + sse("content_block_stop", index=0)
        + message_end("tool_use", 3)
    )
    out, _ = translate_anthropic([stream])
    calls = openai_final(out).choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.arguments == '{"x":[1,2]}'


def test_thinking_signature_and_citation_deltas_dropped() -> None:
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    stream = (
        message_start()
        + sse("content_block_start", index=0, content_block=thinking)
        + sse("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"})
        + sse("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "s"})
        + sse("content_block_stop", index=0)
        + text_block(1, "Answer")
        + sse("some_future_event", detail=1)
        + message_end("end_turn", 5)
    )
    out, _ = translate_anthropic([stream])
    assert b"hmm" not in out
    assert openai_final(out).choices[0].message.content == "Answer"


def test_stream_out_of_order_or_malformed_raises() -> None:
    translator = AnthropicToOpenAI(include_usage=True, created=CREATED)
    with pytest.raises(UpstreamError):
        translator.feed(SSEEvent("content_block_stop", b'{"type":"content_block_stop","index":0}'))
    with pytest.raises(UpstreamError, match="malformed upstream stream"):
        translator.feed(SSEEvent("content_block_delta", b"{not json"))
    with pytest.raises(UpstreamError):
        translator.feed(SSEEvent(None, b"[1, 2]"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TOOL_STREAM)), max_size=12))
def test_any_split_of_anthropic_upstream_gives_the_same_output(cuts: list[int]) -> None:
    whole, _ = translate_anthropic([TOOL_STREAM])
    bounds = [0, *sorted(cuts), len(TOOL_STREAM)]
    pieces = [TOOL_STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert translate_anthropic(pieces)[0] == whole


# ------------------------------------------------------------------- OpenAI → Anthropic


def test_message_delta_held_until_usage() -> None:
    translator = OpenAIToAnthropic(model="claude-x", message_id="msg_gw")
    upstream = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk(finish="stop"),
        usage_chunk(prompt=40, completion=12, cached=30),
    ]
    seen = b"".join(translator.feed(SSEParser().feed(raw)[0].data) for raw in upstream)
    assert b"message_delta" not in seen
    assert translator.usage == Usage(40, 12, 30)
    end = translator.feed(b"[DONE]")
    assert [e.event for e in SSEParser().feed(end)] == [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta = json.loads(SSEParser().feed(end)[1].data)
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 30,
        "output_tokens": 12,
    }
    final = anthropic_final(seen + end)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 12)
    assert final.usage.cache_read_input_tokens == 30
    assert translator.done


def test_block_indexes_contiguous_with_empty_skeletons() -> None:
    out, _ = translate_openai([OPENAI_STREAM])
    events = anthropic_events(out)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "thinking"),
        (1, "text"),
        (2, "tool_use"),
        (3, "tool_use"),
    ]
    final = anthropic_final(out)
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[1].text == "Checking now."  # type: ignore[union-attr]
    assert final.content[2].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert final.content[3].input == {}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert final.id == "msg_gw"
    assert final.model == "claude-x"


@pytest.mark.parametrize(
    "upstream",
    [
        pytest.param(
            [
                chunk(
                    {
                        "tool_calls": [
                            call_start(0, "call_a", "get_weather"),
                            call_start(1, "call_b", "get_time"),
                        ]
                    }
                ),
                chunk({"tool_calls": [call_args(0, '{"city":')]}),
                chunk({"tool_calls": [call_args(1, '{"tz":')]}),
                chunk({"tool_calls": [call_args(0, '"Paris"}')]}),
                chunk({"tool_calls": [call_args(1, '"CET"}')]}),
            ],
            id="announced-then-interleaved",
        ),
        pytest.param(
            [
                chunk(
                    {
                        "tool_calls": [
                            call_start(0, "call_a", "get_weather", '{"city":'),
                            call_start(1, "call_b", "get_time", '{"tz":'),
                        ]
                    }
                ),
                chunk({"tool_calls": [call_args(0, '"Paris"}'), call_args(1, '"CET"}')]}),
            ],
            id="parallel-fragments-per-chunk",
        ),
    ],
)
def test_interleaved_tool_arguments_use_buffered_mode(upstream: list[bytes]) -> None:
    stream = [
        chunk({"role": "assistant", "content": "Sure."}),
        *upstream,
        chunk(finish="tool_calls"),
    ]
    translator = OpenAIToAnthropic(model="claude-x", message_id="msg_gw")
    live = b"".join(translator.feed(SSEParser().feed(raw)[0].data) for raw in stream)
    # The second call is held back: it may not be written while the first block is open.
    assert b"call_b" not in live
    out = live + translator.feed(b"[DONE]")
    events = anthropic_events(out)
    [buffered_json] = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == 2
    ]
    assert buffered_json == '{"tz":"CET"}'
    final = anthropic_final(out)
    tools = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert tools == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"tz": "CET"}),
    ]


def test_sequential_tool_calls_stream_live() -> None:
    translator = OpenAIToAnthropic(model="claude-x", message_id="msg_gw")
    upstream = [
        chunk({"tool_calls": [call_start(0, "call_a", "f", '{"a":1}')]}),
        chunk({"tool_calls": [call_start(1, "call_b", "g", "")]}),
        chunk({"tool_calls": [call_args(1, '{"b":2}')]}),
    ]
    live = b"".join(translator.feed(SSEParser().feed(raw)[0].data) for raw in upstream)
    assert b'"partial_json":"{\\"b\\":2}"' in live
    assert b"call_b" in live


def test_arguments_after_their_block_closed_raise() -> None:
    translator = OpenAIToAnthropic(model="claude-x")
    translator.feed(
        json.dumps(
            {"choices": [{"delta": {"tool_calls": [call_start(0, "a", "f", "{}")]}}]}
        ).encode()
    )
    translator.feed(
        json.dumps(
            {"choices": [{"delta": {"tool_calls": [call_start(1, "b", "g", "{}")]}}]}
        ).encode()
    )
    assert (
        translator.feed(
            json.dumps({"choices": [{"delta": {"tool_calls": [call_args(0, " ")]}}]}).encode()
        )
        == b""
    )
    with pytest.raises(UpstreamError):
        translator.feed(
            json.dumps({"choices": [{"delta": {"tool_calls": [call_args(0, "x")]}}]}).encode()
        )


def test_content_and_finish_in_same_chunk() -> None:
    single = chunk(
        {"role": "assistant", "content": "All done."},
        finish="stop",
        usage={"prompt_tokens": 5, "completion_tokens": 3},
    )
    out, translator = translate_openai([single])
    events = anthropic_events(out)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    final = anthropic_final(out)
    assert final.content[0].text == "All done."  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3
    assert translator.done


def test_thinking_text_and_tool_in_one_chunk_keep_anthropic_order() -> None:
    delta = {
        "tool_calls": [call_start(0, "call_a", "f", '{"q":"x"}')],
        "content": "Text.",
        "reasoning_content": "Think.",
    }
    out, _ = translate_openai([chunk(delta, finish="stop")])
    final = anthropic_final(out)
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.stop_reason == "tool_use"  # tool calls present: tool_use whatever "stop" says


def test_empty_deltas_never_open_blocks() -> None:
    upstream = (
        chunk({"role": "assistant", "content": ""})
        + chunk({"content": "", "reasoning_content": ""})
        + chunk({"refusal": None})
        + chunk(finish="stop")
    )
    out, _ = translate_openai([upstream])
    assert [e["type"] for e in anthropic_events(out)] == [
        "message_start",
        "message_delta",
        "message_stop",
    ]


def test_finish_is_idempotent_and_nothing_follows_message_stop() -> None:
    out, translator = translate_openai([chunk({"content": "Hi"}) + b"data: [DONE]\n\n"])
    assert out.count(b"event: message_stop") == 1
    assert translator.finish() == b""
    assert translator.feed(b'{"choices":[{"delta":{"content":"late"}}]}') == b""
    empty = OpenAIToAnthropic(model="claude-x")
    ended = empty.finish()  # upstream closed without a byte: still a whole Anthropic stream
    assert [e["type"] for e in anthropic_events(ended)] == [
        "message_start",
        "message_delta",
        "message_stop",
    ]


def test_openai_malformed_data_raises() -> None:
    for data in (b"{nope", b"[1, 2]", b'"text"'):
        with pytest.raises(UpstreamError, match="malformed upstream stream"):
            OpenAIToAnthropic(model="m").feed(data)


def test_anthropic_sdk_builds_final_message_with_names_and_usage() -> None:
    names = ToolNames([LONG_NAME])
    upstream = (
        chunk({"role": "assistant", "content": "Fetching."})
        + chunk({"tool_calls": [call_start(0, "call:1", names.short(LONG_NAME), '{"ticker":')]})
        + chunk({"tool_calls": [call_args(0, '"ACME"}')]})
        + chunk(finish="stop")
        + usage_chunk(prompt=1200, completion=40, cached=1000)
        + b"data: [DONE]\n\n"
    )
    out, translator = translate_openai([upstream], names=names)
    final = anthropic_final(out)
    tool = final.content[1]
    assert (tool.type, tool.id, tool.name, tool.input) == (  # type: ignore[union-attr]
        "tool_use",
        "call_1",
        LONG_NAME,
        {"ticker": "ACME"},
    )
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (200, 1000)
    assert final.usage.output_tokens == 40
    assert translator.usage == Usage(1200, 40, 1000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(OPENAI_STREAM)), max_size=12))
def test_any_split_of_openai_upstream_gives_the_same_output(cuts: list[int]) -> None:
    whole, _ = translate_openai([OPENAI_STREAM])
    bounds = [0, *sorted(cuts), len(OPENAI_STREAM)]
    pieces = [OPENAI_STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert translate_openai(pieces)[0] == whole


def fragments(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_any_fragmentation_gives_the_same_final_message(
    text_cuts: list[int], arg_cuts: list[int]
) -> None:
    text, arguments = "Sure — checking the weather in Paris.", '{"city": "Paris", "days": [1, 2]}'
    upstream = chunk({"role": "assistant", "content": ""})
    upstream += b"".join(chunk({"content": part}) for part in fragments(text, text_cuts))
    upstream += chunk({"tool_calls": [call_start(0, "call_a", "forecast")]})
    upstream += b"".join(
        chunk({"tool_calls": [call_args(0, p)]}) for p in fragments(arguments, arg_cuts)
    )
    out, _ = translate_openai([upstream + chunk(finish="tool_calls") + usage_chunk()])
    final = anthropic_final(out)
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.content[1].input == {"city": "Paris", "days": [1, 2]}  # type: ignore[union-attr]
    back, _ = translate_anthropic([out.replace(b"event: message_start", b"event: message_start")])
    assert openai_final(back).choices[0].message.content == text


# ------------------------------------------------------------------- errors, both directions


def openai_error(form: str) -> tuple[bytes, str, str]:
    """An upstream OpenAI error payload, and the Anthropic (type, message) it must become."""
    if form == "object":
        error = {
            "message": "Rate limit reached",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        return json.dumps({"error": error}).encode(), "rate_limit_error", "Rate limit reached"
    if form == "server":
        error = {"message": "The server had an error", "type": "server_error", "code": None}
        return json.dumps({"error": error}).encode(), "api_error", "The server had an error"
    return json.dumps({"error": "backend exploded"}).encode(), "api_error", "backend exploded"


@pytest.mark.parametrize("form", ["anthropic-event", "object", "server", "string"])
def test_mid_stream_error_in_each_form(form: str) -> None:
    if form == "anthropic-event":
        error = {"type": "overloaded_error", "message": "Overloaded"}
        stream = (
            message_start()
            + text_block(0, "Partial")
            + sse("error", error=error)
            + message_end("end_turn", 1)
        )
        out, translator = translate_anthropic([stream])
        assert translator.error == ("overloaded_error", "Overloaded")
        assert not translator.done
        assert DONE not in out
        assert data_lines(out)[-1] == {
            "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
        }
        with pytest.raises(openai.APIError, match="Overloaded"):
            openai_chunks(out)
        return
    payload, anthropic_type, message = openai_error(form)
    upstream = chunk({"role": "assistant", "content": "Partial"}) + b"data: " + payload + b"\n\n"
    out, reverse = translate_openai([upstream + chunk({"content": "ignored"})])
    assert reverse.error == (anthropic_type, message)
    assert reverse.done
    parsed = SSEParser().feed(out)
    assert parsed[-1].event == "error"
    assert json.loads(parsed[-1].data) == {
        "type": "error",
        "error": {"type": anthropic_type, "message": message},
    }
    assert b"message_stop" not in out
    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_final(out)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": anthropic_type, "message": message},
    }
