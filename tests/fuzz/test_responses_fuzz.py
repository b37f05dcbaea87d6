"""Fuzzing the Responses API translators (formats/responses_*.py) with arbitrary JSON: a request
is refused with ``InvalidRequest`` or becomes a chat body, an answer or chunk of any shape becomes
a response, never a KeyError or TypeError (which would be a 500)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lowart.errors import InvalidRequest, UpstreamError
from lowart.formats.request_fields import OPENAI_CHAT_FIELDS
from lowart.formats.responses_output import (
    ChatChunksToResponses,
    chat_to_response,
    response_events,
    response_to_items,
    usage_from_response,
)
from lowart.formats.responses_request import check_responses, input_items, responses_to_chat
from tests.fuzz.strategies import fuzz_examples, json_objects, json_values, mutated

FUZZ = settings(max_examples=fuzz_examples(100), deadline=None)
FEW = settings(max_examples=fuzz_examples(40), deadline=None)  # a stream is many bodies
SEED: dict[str, Any] = {
    "model": "m",
    "instructions": "be brief",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "mcp_approval_response", "approval_request_id": "a1", "approve": True},
    ],
    "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "mcp", "server_label": "docs", "allowed_tools": ["search"]},
    ],
    "tool_choice": {"type": "function", "name": "f"},
    "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
    "reasoning": {"effort": "low"},
    "metadata": {"k": "v"},
    "max_output_tokens": 10,
    "stream": True,
}
COMPLETION: dict[str, Any] = {
    "choices": [
        {
            "message": {
                "content": "hi",
                "reasoning_content": "hm",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
            },
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2},
}

CHUNK: dict[str, Any] = {
    "choices": [
        {
            "index": 0,
            "delta": {
                "content": "hi",
                "reasoning_content": "hm",
                "refusal": "no",
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2},
}


def check_request(body: Any) -> None:
    try:
        check_responses(body)
        items = input_items(body)
        chat = responses_to_chat(body, items)
    except InvalidRequest:
        return
    msgspec.json.encode(chat)
    assert set(chat) <= OPENAI_CHAT_FIELDS
    assert chat["messages"] and all(
        m["role"] in {"system", "user", "assistant", "tool"} for m in chat["messages"]
    )


def check_answer(completion: Any, request: dict[str, Any]) -> None:
    response = chat_to_response(completion, response_id="resp_1", created_at=1, request=request)
    for event in response_events(response):
        assert event.startswith(b"event: response.")
    usage_from_response(response)
    response_to_items(response)


@FUZZ
@given(st.one_of(json_objects, json_values(), mutated(SEED)))
@example({**SEED, "input": [{"role": "user", "content": [{"type": ["input_text"]}]}]})
@example({**SEED, "tools": [{"type": {}}]})
@example({**SEED, "tool_choice": {"type": "function", "name": []}})
@example({"model": "m", "previous_response_id": "resp_1"})
def test_requests_are_refused_or_translated(body: Any) -> None:
    check_request(body)


@FUZZ
@given(st.one_of(json_objects, mutated(COMPLETION)))
def test_answers_of_any_shape_become_responses(completion: Any) -> None:
    check_answer(completion, SEED)


@FEW
@given(st.lists(st.one_of(json_objects, mutated(CHUNK), st.just(CHUNK)), max_size=5))
def test_chunks_of_any_shape_stream_or_fail_cleanly(chunks: list[Any]) -> None:
    translator = ChatChunksToResponses(response_id="resp_1", created_at=1, request=SEED)
    for chunk in chunks:
        translator.feed(chunk)
    with contextlib.suppress(UpstreamError):
        translator.finish()
    msgspec.json.encode(translator.response)
