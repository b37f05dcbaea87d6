"""Hypothesis strategies for the fuzz suite: JSON values shaped like chat wire formats.

Not a test module. Keys come mostly from the vocabulary both APIs use, so that the generated
dicts reach deep into the translators instead of being refused at the first field.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

KEYS = [
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "tool_call_id",
    "image_url",
    "url",
    "file",
    "file_data",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "n",
    "logprobs",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "response_format",
    "json_schema",
    "schema",
    "stream",
    "stream_options",
    "include_usage",
    "parameters",
    "description",
    "input",
    "input_schema",
    "source",
    "media_type",
    "data",
    "tool_use_id",
    "is_error",
    "stop_sequences",
    "metadata",
    "user_id",
    "output_config",
    "format",
    "cache_control",
    "refusal",
    "parallel_tool_calls",
    "disable_parallel_tool_use",
    "reasoning_content",
    "choices",
    "message",
    "delta",
    "finish_reason",
    "index",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "stop_reason",
    "model",
    "content_block",
    "partial_json",
    "error",
    "title",
    "thinking",
    "signature",
]
WORDS = [
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image_url",
    "file",
    "input_audio",
    "refusal",
    "tool_use",
    "tool_result",
    "image",
    "document",
    "base64",
    "thinking",
    "redacted_thinking",
    "auto",
    "required",
    "any",
    "none",
    "json_object",
    "json_schema",
    "custom",
    "end_turn",
    "max_tokens",
    "stop",
    "length",
    "tool_calls",
    "message_start",
    "message_delta",
    "message_stop",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "ping",
    "error",
    "text_delta",
    "input_json_delta",
    "application/pdf",
    "image/png",
    "data:image/png;base64,AAAA",
    "data:application/pdf;base64,JVBE",
    "http://x/y.png",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Any JSON value (as msgspec decodes them), biased to chat-format keys and words."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(keys, inner, max_size=6),
        ),
        max_leaves=max_leaves,
    )


json_objects = st.dictionaries(keys, json_values(), max_size=8)
small_objects = st.dictionaries(keys, json_values(8), max_size=5)


def fuzz_examples(default: int) -> int:
    """Examples per property: ``default`` in the suite (bounded time), more for a long run with
    ``LOWART_FUZZ_EXAMPLES`` set."""
    return int(os.environ.get("LOWART_FUZZ_EXAMPLES", default))


def _message(role: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"role": role, "content": st.one_of(st.text(max_size=20), json_values(10))},
        optional={
            "tool_calls": json_values(12),
            "tool_call_id": st.one_of(st.text(max_size=8), scalars),
            "name": st.text(max_size=8),
        },
    )


def chat_bodies(roles: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A request body with a list of message-shaped dicts, then anything else beside it."""
    return st.fixed_dictionaries(
        {"messages": st.lists(_message(st.sampled_from(roles)), max_size=5)},
        optional={
            key: json_values(10)
            for key in [
                "model",
                "tools",
                "tool_choice",
                "max_tokens",
                "max_completion_tokens",
                "temperature",
                "top_p",
                "stop",
                "stop_sequences",
                "system",
                "response_format",
                "output_config",
                "metadata",
                "user",
                "n",
                "logprobs",
                "stream",
                "parallel_tool_calls",
                "api_base",
                "base_url",
                "api_key",
                "extra_headers",
            ]
        },
    )


# -- well-formed bodies with one value swapped for any JSON -------------------------------------

PNG_URI = "data:image/png;base64,AAAA"
PDF_URI = "data:application/pdf;base64,JVBE"
OPENAI_TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
ANTHROPIC_TOOLS = [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]

OPENAI_SEED: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "s", "cache_control": {}}]},
        {"role": "developer", "content": "d"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": PNG_URI}},
                {"type": "file", "file": {"file_data": PDF_URI}},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "no"}],
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]},
        {"role": "system", "content": "mid"},
        {"role": "user", "content": "bye"},
    ],
    "tools": OPENAI_TOOLS,
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    "max_completion_tokens": 5,
    "temperature": 0.5,
    "top_p": 1,
    "stop": ["x"],
    "user": "u",
    "n": 1,
    "stream": True,
}
ANTHROPIC_SEED: dict[str, Any] = {
    "model": "m",
    "max_tokens": 5,
    "system": [{"type": "text", "text": "s"}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "A"},
                },
                {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}},
                {"type": "document", "source": {"type": "text", "data": "t"}},
                {
                    "type": "document",
                    "title": "t",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "J"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "text", "text": "a"},
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "c1",
                    "is_error": True,
                    "content": [{"type": "text", "text": "r"}, {"type": "image", "source": {}}],
                },
                {"type": "tool_result", "tool_use_id": "c1", "content": "r"},
            ],
        },
        {"role": "assistant", "content": "ok"},
    ],
    "tools": ANTHROPIC_TOOLS,
    "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    "stop_sequences": ["x"],
    "metadata": {"user_id": "u"},
    "temperature": 0.5,
    "top_p": 1,
    "stream": True,
}
OPENAI_COMPLETION_SEED: dict[str, Any] = {
    "id": "c",
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "a",
                "refusal": None,
                "reasoning_content": "r",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": {}},
}
ANTHROPIC_MESSAGE_SEED: dict[str, Any] = {
    "id": "msg",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "a"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 0},
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (the root excluded)."""
    if not isinstance(value, dict | list):
        return []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    found: list[tuple[Any, ...]] = []
    for key, inner in items:
        found += [(*path, key), *_paths(inner, (*path, key))]
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any], swaps: int = 2) -> dict[str, Any]:
    """``seed`` (well formed, so every branch is reached) with up to ``swaps`` values replaced by
    any JSON value: a list or an object where a string belongs, a string where a list does..."""
    body = seed
    for _ in range(draw(st.integers(1, swaps))):
        path = draw(st.sampled_from(_paths(body)))
        body = _replaced(body, path, draw(json_values(6)))
    return body
