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
