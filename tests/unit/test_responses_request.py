"""A Responses API request checked (each refusal naming its field) and translated to a chat
request for the whole conversation (formats/responses_request.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
from openai.types.responses import ResponseFunctionToolCallItem, ResponseInputMessageItem
from openai.types.responses.response_function_tool_call_output_item import (
    ResponseFunctionToolCallOutputItem,
)

from lowart.errors import InvalidRequest
from lowart.formats.responses_request import (
    FIELDS,
    check_responses,
    input_items,
    responses_to_chat,
)

DOCS = Path(__file__).parents[2] / "docs" / "api.md"
CALL = {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi"} | fields


def refused_param(request: dict[str, Any]) -> str | None:
    with pytest.raises(InvalidRequest) as refused:
        check_responses(request)
    return refused.value.param


def chat(request: dict[str, Any], earlier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    check_responses(request)
    return responses_to_chat(request, [*(earlier or []), *input_items(request)])


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [TOOL, {"type": "file_search", "vector_store_ids": []}]}, "tools[1].type"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
        ({"tools": [{"type": "local_shell"}]}, "tools[0].type"),
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type"),
        (
            {"tools": [{"type": "mcp", "server_label": "s", "server_url": "https://x"}]},
            "tools[0].server_url",
        ),
        (
            {"tools": [{"type": "mcp", "server_label": "s", "connector_id": "c"}]},
            "tools[0].connector_id",
        ),
        (
            {"tools": [{"type": "mcp", "server_label": "s", "headers": {"a": "b"}}]},
            "tools[0].headers",
        ),
        (
            {"tools": [{"type": "mcp", "server_label": "s", "authorization": "t"}]},
            "tools[0].authorization",
        ),
        ({"tools": [{"type": "mcp", "server_label": "s", "tunnel_id": "t"}]}, "tools[0].tunnel_id"),
        ({"truncation": "auto"}, "truncation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"context_management": [{"type": "compaction"}]}, "context_management"),
        ({"background": True, "store": False}, "background"),
        ({"tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"tool_choice": {"type": "mcp", "server_label": "s"}}, "tool_choice"),
        ({"tools": [{"type": "mcp", "server_label": "s"}], "max_tool_calls": 3}, "max_tool_calls"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
    ],
)
def test_refused_fields_are_named(fields: dict[str, Any], param: str) -> None:
    assert refused_param(body(**fields)) == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"input": None}, "input"),
        ({"input": 5}, "input"),
        ({"input": [5]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        ({"input": [{**CALL, "arguments": {}}]}, "input[0].arguments"),
        ({"input": [{**OUTPUT, "output": 3}]}, "input[0].output"),
        (
            {
                "input": [
                    {"type": "mcp_approval_response", "approval_request_id": "a", "approve": "yes"}
                ]
            },
            "input[0].approve",
        ),
        (
            {"input": [{"type": "mcp_approval_response", "approve": True}]},
            "input[0].approval_request_id",
        ),
        (
            {
                "input": [
                    {
                        "type": "mcp_approval_response",
                        "approval_request_id": "a",
                        "approve": True,
                        "reason": 1,
                    }
                ]
            },
            "input[0].reason",
        ),
        ({"instructions": ["x"]}, "instructions"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 10_000_001}, "max_output_tokens"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tools": [{**TOOL, "parameters": []}]}, "tools[0].parameters"),
        ({"tools": [{"type": "mcp"}]}, "tools[0].server_label"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"reasoning": "high"}, "reasoning"),
        ({"stream": 1}, "stream"),
        ({"background": "yes"}, "background"),
        ({"previous_response_id": "chatcmpl-1"}, "previous_response_id"),
        ({"previous_response_id": "resp_a b"}, "previous_response_id"),
        ({"metadata": {str(n): "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 64),
        ({"truncation": "sometimes"}, "truncation"),
        ({"max_tool_calls": "3"}, "max_tool_calls"),
        ({"include": "reasoning.encrypted_content"}, "include"),
    ],
)
def test_bad_shapes_are_named(fields: dict[str, Any], param: str) -> None:
    assert refused_param(body(**fields)) == param


def test_deep_nesting_is_refused() -> None:
    deep: dict[str, Any] = {}
    for _ in range(70):
        deep = {"items": deep}
    assert refused_param(body(tools=[{**TOOL, "parameters": deep}])) == "tools"


def test_ignored_fields_pass_and_are_not_sent() -> None:
    ignored = {
        "user": "u1",
        "safety_identifier": "s1",
        "service_tier": "flex",
        "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
        "truncation": "disabled",
        "store": True,
        "metadata": {"team": "a"},
        "stream_options": {"include_obfuscation": False},
        "top_logprobs": 3,
        "reasoning": {"summary": "auto"},
        "background_options": {"completion_window": "soonest"},
        "something_new": {"from": "the future"},
        "tools": [TOOL],
        "max_tool_calls": 2,  # no mcp tool: it limits nothing
    }
    out = chat(body(**ignored))
    assert set(out) == {"model", "messages", "tools"}


def test_string_input_instructions_and_sampling() -> None:
    request = body(
        instructions="be brief",
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        parallel_tool_calls=False,
        reasoning={"effort": "low", "summary": "auto"},
        prompt_cache_key="k1",
        text={"verbosity": "low"},
        stream=True,
    )
    assert chat(request) == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "reasoning_effort": "low",
        "prompt_cache_key": "k1",
        "verbosity": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_items_roles_parts_and_images() -> None:
    image = {"type": "input_image", "image_url": "https://x/cat.png", "detail": "high"}
    items = [
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "sys"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "look"}, image]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "a cat"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": "thanks"},
    ]
    assert chat(body(input=items))["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "high"}},
            ],
        },
        {"role": "assistant", "content": "a cat"},
        {"role": "assistant", "content": "no"},
        {"role": "user", "content": "thanks"},
    ]
    assert (
        refused_param(body(input=[{"role": "system", "content": [image]}])) == "input[0].content[0]"
    )


def test_function_round_trip_merges_calls_after_text() -> None:
    second = {**CALL, "call_id": "call_2", "arguments": '{"a": 1}'}
    earlier = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        CALL,
        second,
        {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "s", "tools": []},
    ]
    request = body(
        input=[
            OUTPUT,
            {
                **OUTPUT,
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "a"},
                    {"type": "input_text", "text": "b"},
                ],
            },
        ],
        tools=[TOOL],
    )
    out = chat(request, earlier)
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"a": 1}'},
        },
    ]
    assert out["messages"] == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "ok", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "ab"},
    ]
    assert out["tools"] == [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]


def test_formats_tools_and_choices() -> None:
    schema = {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    mcp = {
        "type": "mcp",
        "server_label": "docs",
        "allowed_tools": ["search"],
        "require_approval": "always",
    }
    out = chat(
        body(
            text={"format": schema},
            tools=[{**TOOL, "strict": False}, mcp],
            tool_choice={"type": "function", "name": "lookup"},
        )
    )
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert out["tools"][0]["function"]["strict"] is False
    assert out["tools"][1] == mcp
    assert out["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert chat(body(text={"format": {"type": "json_object"}}))["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat(body(text={"format": {"type": "text"}}))
    for choice in ("auto", "none", "required"):
        assert chat(body(tools=[TOOL], tool_choice=choice))["tool_choice"] == choice


def test_input_items_normalized_with_ids() -> None:
    items = input_items(
        body(
            input=[
                {"role": "user", "content": "hi"},
                CALL,
                OUTPUT,
                {"role": "assistant", "content": "yo"},
            ]
        )
    )
    assert [item["id"][: item["id"].index("_")] for item in items] == ["msg", "fc", "fco", "msg"]
    assert all(re.fullmatch(r"[a-z]+_[0-9a-f]{48}", item["id"]) for item in items)
    ResponseInputMessageItem.model_validate(items[0])
    ResponseFunctionToolCallItem.model_validate(items[1])
    ResponseFunctionToolCallOutputItem.model_validate(items[2])
    assert items[3]["content"] == [{"type": "output_text", "text": "yo", "annotations": []}]
    (only,) = input_items(body())
    assert only["type"] == "message" and only["role"] == "user"
    assert only["content"] == [{"type": "input_text", "text": "hi"}]
    kept = input_items(body(input=[{**CALL, "id": "fc_mine"}]))
    assert kept[0]["id"] == "fc_mine"
    with pytest.raises(pydantic.ValidationError):  # the SDK's types do check
        ResponseInputMessageItem.model_validate({"type": "message"})


def test_continuation_without_input_and_empty_conversation() -> None:
    request = {"model": "m", "previous_response_id": "resp_abc-1"}
    check_responses(request)
    assert input_items(request) == []
    earlier = input_items(body())
    assert chat(request, earlier)["messages"] == [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequest) as empty:
        responses_to_chat(request, [])
    assert empty.value.param == "input"


def test_docs_table_lists_every_field() -> None:
    text = DOCS.read_text()
    section = text[text.index("\n### Fields", text.index("\n## Responses")) :]
    section = section[: section.index("\n### ", 1)]
    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|"))
        for line in section.splitlines()
        if line.startswith("| `")
    }
    for field, handling, note in FIELDS:
        assert (f"`{field}`", handling, note) in rows, field
    assert len(rows) == len(FIELDS)
    assert len({field for field, _, _ in FIELDS}) == len(FIELDS)
