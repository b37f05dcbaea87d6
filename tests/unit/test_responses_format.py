"""Responses API answers built from chat completions (formats/responses_output.py): each is a
valid ``Response`` of the official SDK, and each stream, whole or translated chunk by chunk,
accumulates in the SDK's own ``ResponseStreamState`` into the same answer."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pydantic
import pytest
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from lowart.errors import UpstreamError
from lowart.formats.openai import Usage, completion_chunks
from lowart.formats.responses_output import (
    ChatChunksToResponses,
    chat_to_response,
    response_events,
    response_to_items,
    usage_from_response,
)
from lowart.formats.responses_request import input_items, responses_to_chat
from lowart.formats.sse import SSEParser

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
REQUEST: dict[str, Any] = {
    "model": "gpt-x",
    "input": "weather?",
    "instructions": "be brief",
    "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    "metadata": {"team": "a"},
    "temperature": 0.5,
}
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 9,
    "total_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def completion(message: dict[str, Any], finish: str = "stop", usage: Any = USAGE) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x"}
    return body | {"choices": [choice], "usage": usage}


TEXT = completion({"content": "Sunny in Paris."})
CALLS = completion(
    {
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "clock", "arguments": "{}"}},
        ],
    },
    "tool_calls",
)
REASONED = completion({"content": "42", "reasoning_content": "Six times seven."})
LENGTH = completion({"content": "Sunny in"}, "length")
ANSWERS = {"text": TEXT, "calls": CALLS, "reasoned": REASONED, "length": LENGTH}


def whole(answer: dict[str, Any], response_id: str = "resp_1") -> dict[str, Any]:
    return chat_to_response(answer, response_id=response_id, created_at=1700000000, request=REQUEST)


def accumulate(stream: bytes) -> tuple[Response, list[str]]:
    """The SDK's final response for a stream (or the incomplete/failed one), and event types;
    every event is checked against the SDK's types and numbered in order from 0."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    parser = SSEParser()
    kinds: list[str] = []
    last: Any = None  # the response of the last lifecycle event
    for number, sse in enumerate([*parser.feed(stream), *parser.close()]):
        data = json.loads(sse.data)
        assert (sse.event, data["sequence_number"]) == (data["type"], number)
        event = EVENTS.validate_python(data)
        kinds.append(event.type)
        for handled in state.handle_event(event):
            last = getattr(handled, "response", last)
    assert last is not None  # the closing event's response (completed: the SDK's final one)
    return Response.model_validate(last.model_dump()), kinds


def calls_of(response: Response) -> list[tuple[str, str, str]]:
    return [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"]


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_whole_response_is_valid_and_streams_the_same(name: str) -> None:
    built = whole(ANSWERS[name])
    assert "output_text" not in built
    response = Response.model_validate(built)
    message = ANSWERS[name]["choices"][0]["message"]
    assert response.output_text == message["content"]
    assert (
        response.id == "resp_1" and response.model == "gpt-x" and response.created_at == 1700000000
    )
    streamed, kinds = accumulate(b"".join(response_events(built)))
    assert streamed.output_text == response.output_text
    assert streamed.usage == response.usage
    assert calls_of(streamed) == calls_of(response)
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == ("response.incomplete" if name == "length" else "response.completed")


def test_whole_response_fields() -> None:
    response = Response.model_validate(whole(CALLS))
    assert response.status == "completed" and response.incomplete_details is None
    assert calls_of(response) == [
        ("call_1", "lookup", '{"city": "Paris"}'),
        ("call_2", "clock", "{}"),
    ]
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    assert response.usage is not None
    assert response.usage.model_dump(exclude_none=True) == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 21,
    }
    assert response.instructions == "be brief" and response.metadata == {"team": "a"}
    assert (response.temperature, response.top_p, response.tool_choice) == (0.5, 1.0, "auto")
    assert response.tools[0].type == "function" and response.tools[0].name == "lookup"
    assert (response.parallel_tool_calls, response.store, response.truncation) == (
        True,
        True,
        "disabled",
    )
    reasoned = Response.model_validate(whole(REASONED))
    assert reasoned.output[0].type == "reasoning"
    assert reasoned.output[0].content is not None
    assert reasoned.output[0].content[0].text == "Six times seven."


def test_stops_refusals_and_missing_usage() -> None:
    cut = Response.model_validate(whole(LENGTH))
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output[0].type == "message" and cut.output[0].status == "incomplete"
    filtered = Response.model_validate(whole(completion({"content": "x"}, "content_filter")))
    assert filtered.incomplete_details is not None
    assert filtered.incomplete_details.reason == "content_filter"
    refused = Response.model_validate(whole(completion({"content": None, "refusal": "No."})))
    assert refused.output_text == ""
    assert refused.output[0].type == "message" and refused.output[0].content[0].type == "refusal"
    assert Response.model_validate(whole(completion({"content": "x"}, usage=None))).usage is None
    junk = whole({"choices": "nope", "usage": {"prompt_tokens": "3"}})
    assert Response.model_validate(junk).output == []


def chunks_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat stream telling this completion (the gateway's own whole-to-stream)."""
    parser = SSEParser()
    events = [
        e for data in completion_chunks(answer, include_usage=True) for e in parser.feed(data)
    ]
    return [json.loads(e.data) for e in events if e.data != b"[DONE]"]


def word_chunks(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The same answer streamed finely: reasoning and text word by word, arguments in pieces."""
    message = answer["choices"][0]["message"]
    deltas: list[dict[str, Any]] = [{"role": "assistant"}]
    for key in ("reasoning_content", "content"):
        words = message[key].split(" ") if message.get(key) else []
        deltas += [{key: word + " "} for word in words[:-1]] + [{key: word} for word in words[-1:]]
    for index, call in enumerate(message.get("tool_calls") or ()):
        head = {"index": index, "id": call["id"], "type": "function"}
        deltas.append(
            {
                "tool_calls": [
                    head | {"function": {"name": call["function"]["name"], "arguments": ""}}
                ]
            }
        )
        arguments = call["function"]["arguments"]
        for piece in (arguments[:3], arguments[3:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    finish = answer["choices"][0]["finish_reason"]
    chunks = [{"choices": [{"index": 0, "delta": delta}]} for delta in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return [*chunks, {"choices": [], "usage": answer["usage"]}]


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("split", [chunks_of, word_chunks])
def test_streamed_translation_matches_the_whole_answer(name: str, split: Any) -> None:
    answer = ANSWERS[name]
    translator = ChatChunksToResponses(response_id="resp_2", created_at=1700000000, request=REQUEST)
    pieces = [translator.feed(chunk) for chunk in split(answer)]
    assert not translator.done
    assert translator.text == (answer["choices"][0]["message"]["content"] or "")
    pieces.append(translator.finish())
    assert translator.done
    assert pieces[0].count(b"event: ") >= 2  # response.created and response.in_progress first
    streamed, kinds = accumulate(b"".join(pieces))
    if split is chunks_of:  # the gateway's whole-to-stream leaves reasoning out
        message = answer["choices"][0]["message"]
        answer = completion({k: v for k, v in message.items() if k != "reasoning_content"})
        answer["choices"][0]["finish_reason"] = ANSWERS[name]["choices"][0]["finish_reason"]
    expected = Response.model_validate(whole(answer))
    final = Response.model_validate(translator.response)
    for response in (streamed, final):
        assert response.output_text == expected.output_text
        assert response.usage == expected.usage
        assert calls_of(response) == calls_of(expected)
        assert [item.type for item in response.output] == [item.type for item in expected.output]
        assert response.status == expected.status
    assert streamed.id == final.id == "resp_2"
    assert kinds[-1] == ("response.incomplete" if name == "length" else "response.completed")
    deltas = kinds.count("response.output_text.delta")
    assert deltas == (len(expected.output_text.split(" ")) if split is word_chunks else 1)


def test_stream_without_a_finish_is_an_upstream_error() -> None:
    translator = ChatChunksToResponses(response_id="resp_3", created_at=1, request=REQUEST)
    translator.feed({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})
    with pytest.raises(UpstreamError, match="ended without finishing"):
        translator.finish()
    assert not translator.done
    assert translator.response["status"] == "in_progress"
    empty = ChatChunksToResponses(response_id="resp_4", created_at=1, request=REQUEST)
    opened = empty.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    response, kinds = accumulate(opened + empty.finish())
    assert kinds == ["response.created", "response.in_progress", "response.completed"]
    assert response.output == [] and empty.response["output"] == []


def test_a_broken_stream_fails_with_its_output_so_far() -> None:
    translator = ChatChunksToResponses(response_id="resp_6", created_at=1, request=REQUEST)
    opened = translator.feed({"choices": [{"index": 0, "delta": {"content": "Sunny"}}]})
    response, kinds = accumulate(opened + translator.fail("The upstream broke off."))
    assert kinds[-1] == "response.failed" and response.status == "failed"
    assert response.error is not None and response.error.code == "server_error"
    assert response.output_text == "Sunny" and response.output[0].status == "incomplete"
    assert not translator.done and translator.response["status"] == "failed"


def test_junk_chunks_are_skipped() -> None:
    translator = ChatChunksToResponses(response_id="resp_5", created_at=1, request=REQUEST)
    stream = b"".join(
        translator.feed(chunk)  # type: ignore[arg-type]
        for chunk in (
            {"choices": [{"delta": {"content": 5, "tool_calls": "x"}}]},
            {"choices": [{"delta": {"tool_calls": [7, {"function": {"arguments": "{}"}}]}}]},
            {"choices": "x", "usage": "y"},
            {"choices": [{"index": 1, "delta": {"content": "other choice"}}]},
            {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]},
            [],
        )
    )
    response, _ = accumulate(stream + translator.finish())
    assert response.output_text == "ok" and response.usage is None
    assert [(name, args) for _, name, args in calls_of(response)] == [("", "{}")]


def test_mcp_items_tell_their_events() -> None:
    listed = {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "docs"}
    listed |= {"tools": [{"name": "search", "input_schema": {"type": "object"}}]}
    called = {"id": "mcp_1", "type": "mcp_call", "server_label": "docs", "name": "search"}
    called |= {"arguments": '{"q": "x"}', "output": "found", "status": "completed"}
    failed = called | {
        "id": "mcp_2",
        "error": {"type": "mcp_tool_execution_error", "content": "boom"},
    }
    failed |= {"status": "failed", "output": None}
    asked = {"id": "mcpr_1", "type": "mcp_approval_request", "server_label": "docs"}
    asked |= {"name": "delete", "arguments": "{}"}
    built = whole(TEXT) | {"output": [listed, called, failed, asked]}
    response, kinds = accumulate(b"".join(response_events(built)))
    assert [item.type for item in response.output] == [
        "mcp_list_tools",
        "mcp_call",
        "mcp_call",
        "mcp_approval_request",
    ]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed", "response.output_item.done",
        "response.output_item.added", "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.completed", "response.output_item.done",
        "response.output_item.added", "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.failed", "response.output_item.done",
        "response.output_item.added", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    summary = whole(REASONED)
    summary["output"][0] |= {"summary": [{"type": "summary_text", "text": "Multiplied."}]}
    _, reasoned = accumulate(b"".join(response_events(summary)))
    assert "response.reasoning_summary_text.delta" in reasoned
    assert "response.reasoning_text.delta" in reasoned
    failed_response = whole(TEXT) | {
        "status": "failed",
        "error": {"code": "server_error", "message": "x"},
    }
    assert accumulate(b"".join(response_events(failed_response)))[1][-1] == "response.failed"


def test_usage_from_response() -> None:
    built = whole(TEXT)
    assert usage_from_response(built) == Usage(12, 9, 4)
    assert usage_from_response(built["usage"]) == Usage(12, 9, 4)
    assert usage_from_response({"input_tokens": -5, "output_tokens": 2**40}) == Usage(0, 2**31, 0)
    details = {"input_tokens": 3, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 9}}
    assert usage_from_response(details) == Usage(3, 1, 3)
    for junk in (None, "x", [], {}, {"usage": None}, {"input_tokens": "3", "output_tokens": 1}):
        assert usage_from_response(junk) is None


def test_response_to_items_continue_the_conversation() -> None:
    built = whole(REASONED)
    built["output"] += whole(CALLS)["output"]
    built["output"].append(
        {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "s", "tools": []}
    )
    items = response_to_items(built)
    assert [item["type"] for item in items] == [
        "message", "message", "function_call", "function_call", "mcp_list_tools"
    ]  # fmt: skip
    assert all(item.get("role", "assistant") == "assistant" for item in items)
    follow = {"model": "m", "previous_response_id": "resp_1", "input": [
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
    ]}  # fmt: skip
    messages = responses_to_chat(follow, items + input_items(follow))["messages"]
    assert [m["role"] for m in messages] == ["assistant", "assistant", "tool", "tool"]
    assert messages[1]["content"] == "Let me look." and len(messages[1]["tool_calls"]) == 2
    assert msgspec.json.encode(messages)
