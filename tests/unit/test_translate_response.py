"""Whole responses, usage, stop reasons and error types across the two APIs."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from lowart.errors import UpstreamError
from lowart.formats.anthropic import (
    anthropic_event,
    anthropic_type_for_openai,
    anthropic_type_for_status,
    error_event,
    error_payload,
    finish_to_stop,
    openai_error_type_for,
    stop_to_finish,
    usage_from_anthropic,
    usage_to_anthropic,
)
from lowart.formats.anthropic_tools import ToolNames
from lowart.formats.openai import Usage
from lowart.formats.sse import SSEParser
from lowart.formats.translate_response import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
    openai_usage,
    usage_from_openai,
)

MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "text", "text": "Let me check"},
        {"type": "text", "text": " the weather."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "output_tokens": 60,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 1024,
    },
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "reasoning_content": "The user wants weather.",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call.b",
                        "type": "function",
                        "function": {"name": "now", "arguments": "oops"},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 64},
    },
}


def test_cached_tokens_not_double_counted() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5,
            "output_tokens": 7,
        }
    )
    assert usage == Usage(
        prompt_tokens=115, completion_tokens=7, cached_tokens=100, cache_write_tokens=5
    )
    assert usage.total_tokens == 122
    assert usage_to_anthropic(usage) == {  # the cache's writes survive the round trip
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 7,
    }
    assert usage_to_anthropic(Usage(115, 7, 100)) == {
        "input_tokens": 15,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 7,
    }
    assert usage_to_anthropic(Usage(5, 1, 9))["input_tokens"] == 0
    assert usage_from_openai(COMPLETION["usage"]) == Usage(82, 17, 64)
    assert openai_usage(Usage(82, 17, 64)) == {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 64},
    }


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({}, Usage(0, 0, 0)),
        ({"input_tokens": -4, "output_tokens": "12"}, Usage(0, 0, 0)),
        (
            {"input_tokens": 3.0, "output_tokens": None, "cache_read_input_tokens": True},
            Usage(3, 0, 0),
        ),
        ({"input_tokens": 3, "cache_read_input_tokens": -1, "output_tokens": 2}, Usage(3, 2, 0)),
    ],
)
def test_usage_tolerates_missing_negative_and_odd_values(
    usage: dict[str, Any], expected: Usage
) -> None:
    assert usage_from_anthropic(usage) == expected


def test_openai_usage_tolerates_missing_values() -> None:
    assert usage_from_openai(None) == Usage(0, 0, 0)
    assert usage_from_openai(
        {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}
    ) == Usage(5, 0, 5)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        ("tool_use", "stop"),  # no tool_use block: an OpenAI client would find no tool calls
        (None, "stop"),
        ("brand_new_reason", "stop"),
    ],
)
def test_stop_reason_table(stop_reason: str | None, finish: str) -> None:
    assert stop_to_finish(stop_reason, has_tool_use=False) == finish


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "end_turn"),
        ("function_call", "end_turn"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_finish_reason_table(finish: str | None, stop_reason: str) -> None:
    assert finish_to_stop(finish, has_tool_use=False) == stop_reason


def test_stop_reason_tool_use_wins() -> None:
    for reason in ("end_turn", "max_tokens", "tool_use", None):
        assert stop_to_finish(reason, has_tool_use=True) == "tool_calls"
    for finish in ("stop", "length", "tool_calls", None):
        assert finish_to_stop(finish, has_tool_use=True) == "tool_use"
    ended = MESSAGE | {"stop_reason": "end_turn"}
    reply: Any = anthropic_to_openai_response(ended, created=1)
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    assert openai_to_anthropic_response(COMPLETION)["stop_reason"] == "tool_use"


def test_anthropic_message_to_completion() -> None:
    reply = anthropic_to_openai_response(MESSAGE, created=1735689600)
    assert reply == {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion",
        "created": 1735689600,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 1059,
            "completion_tokens": 60,
            "total_tokens": 1119,
            "prompt_tokens_details": {"cached_tokens": 1024},
        },
    }
    parsed = openai.types.chat.ChatCompletion.model_validate(reply)
    assert parsed.choices[0].message.tool_calls is not None


def test_content_is_null_without_text_blocks() -> None:
    tool_only = MESSAGE | {"content": [MESSAGE["content"][3]]}
    reply: Any = anthropic_to_openai_response(tool_only, created=1)
    message = reply["choices"][0]["message"]
    assert message["content"] is None
    empty_text = MESSAGE | {"content": [{"type": "text", "text": ""}], "stop_reason": "max_tokens"}
    reply = anthropic_to_openai_response(empty_text, created=1)
    choice = reply["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "", "refusal": None}
    assert choice["finish_reason"] == "length"


def test_completion_to_anthropic_message() -> None:
    message = openai_to_anthropic_response(COMPLETION, message_id="msg_x")
    assert message == {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": ""},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_b", "name": "now", "input": {"raw": "oops"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 18,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 64,
            "output_tokens": 17,
        },
    }
    parsed = anthropic.types.Message.model_validate(message)
    assert parsed.usage.cache_read_input_tokens == 64


def test_completion_names_mapped_back_and_ids_generated() -> None:
    long_name = "a" * 80
    names = ToolNames([long_name])
    short = names.short(long_name)
    call = {"type": "function", "function": {"name": short, "arguments": "{}"}}
    completion = COMPLETION | {
        "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [call]}}]
    }
    message: Any = openai_to_anthropic_response(completion, names=names)
    assert message["id"].startswith("msg_")
    assert message["content"][0]["name"] == long_name
    assert message["content"][0]["id"].startswith("toolu_")


def test_refusal_and_text_parts_become_text() -> None:
    refusal = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    completion = COMPLETION | {
        "choices": [{"index": 0, "message": refusal, "finish_reason": "content_filter"}]
    }
    message = openai_to_anthropic_response(completion)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"
    parts = {
        "role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    completion = COMPLETION | {
        "choices": [{"index": 0, "message": parts, "finish_reason": "length"}]
    }
    assert openai_to_anthropic_response(completion)["content"] == [{"type": "text", "text": "ab"}]


def test_completion_without_choices_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        openai_to_anthropic_response(COMPLETION | {"choices": []})


@pytest.mark.parametrize(
    ("anthropic_type", "openai_type", "code"),
    [
        ("invalid_request_error", "invalid_request_error", None),
        ("authentication_error", "invalid_request_error", "invalid_api_key"),
        ("permission_error", "permission_error", None),
        ("not_found_error", "invalid_request_error", "model_not_found"),
        ("rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
        ("api_error", "server_error", None),
        ("overloaded_error", "server_error", None),
        ("something_new", "server_error", None),
    ],
)
def test_openai_error_type_for(anthropic_type: str, openai_type: str, code: str | None) -> None:
    assert openai_error_type_for(anthropic_type) == (openai_type, code)


@pytest.mark.parametrize(
    ("status", "anthropic_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_type_for_status(status: int, anthropic_type: str) -> None:
    assert anthropic_type_for_status(status) == anthropic_type


def test_anthropic_type_for_openai_prefers_the_code() -> None:
    assert (
        anthropic_type_for_openai("invalid_request_error", "invalid_api_key")
        == "authentication_error"
    )
    assert anthropic_type_for_openai("invalid_request_error", None) == "invalid_request_error"
    assert anthropic_type_for_openai("tokens", "rate_limit_exceeded") == "rate_limit_error"
    assert anthropic_type_for_openai("server_error", None) == "api_error"
    assert anthropic_type_for_openai(None, None) == "api_error"


def test_events_and_error_bodies() -> None:
    raw = anthropic_event("content_block_stop", {"index": 2, "type": "ignored"})
    assert raw == b'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n'
    assert error_payload("overloaded_error", "Overloaded") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    [event] = SSEParser().feed(error_event("overloaded_error", "Overloaded"))
    assert event.event == "error"
    assert json.loads(event.data) == error_payload("overloaded_error", "Overloaded")
