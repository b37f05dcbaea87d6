"""Request translation both ways: one test per trap, plus goldens."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowart.errors import InvalidRequest
from lowart.formats.anthropic import clean_id
from lowart.formats.anthropic_tools import ToolNames, shorten_tool_name
from lowart.formats.translate_request import (
    JSON_INSTRUCTION,
    anthropic_to_openai,
    openai_to_anthropic,
)
from lowart.formats.translate_response import anthropic_to_openai_response

LONG_NAME = "lookup_customer_order_history_and_shipping_status_for_region_" + "x" * 20
PNG = "iVBORw0KGgo="
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def to_anthropic(**fields: Any) -> dict[str, Any]:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]} | fields
    return openai_to_anthropic(body, upstream_model="claude-x")


def to_openai(**fields: Any) -> dict[str, Any]:
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    return anthropic_to_openai(body | fields)


def tool_loop(*tail: dict[str, Any]) -> list[dict[str, Any]]:
    call: dict[str, Any] = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = '{"city":"Paris"}'
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        *tail,
    ]


# ------------------------------------------------------------------- OpenAI → Anthropic


def test_whitespace_only_stop_sequences_dropped() -> None:
    assert to_anthropic(stop=["\n", "  ", "END", "\t"])["stop_sequences"] == ["END"]
    assert to_anthropic(stop="STOP")["stop_sequences"] == ["STOP"]
    assert "stop_sequences" not in to_anthropic(stop=["\n", " "])
    assert "stop_sequences" not in to_anthropic(stop="\n")
    assert "stop_sequences" not in to_anthropic(stop=None)


def test_tool_result_blocks_come_first_in_user_turn() -> None:
    messages = tool_loop(
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "user", "content": "Thanks! And tomorrow?"},
    )
    turns = to_anthropic(messages=messages)["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {"type": "text", "text": "Thanks! And tomorrow?"},
    ]
    # Even out of order (a user message before the tool message), the results lead the turn.
    swapped = tool_loop(
        {"role": "user", "content": "Thanks!"},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    )
    last = to_anthropic(messages=swapped)["messages"][-1]["content"]
    assert [block["type"] for block in last] == ["tool_result", "text"]


def test_consecutive_tool_messages_merged() -> None:
    second = {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
    messages = tool_loop(
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9am"}]},
    )
    messages[1]["tool_calls"].append(second)
    turns = to_anthropic(messages=messages)["messages"]
    assert len(turns) == 3
    assert turns[1]["content"][1] == {
        "type": "tool_use",
        "id": "call_2",
        "name": "get_time",
        "input": {},
    }
    assert turns[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "9am"},
        ],
    }


def test_consecutive_same_role_turns_merged() -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    turns = to_anthropic(messages=messages)["messages"]
    assert turns == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    ]


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1), (2, 1), (-0.5, 0), (0.3, 0.3), (1, 1)])
def test_temperature_clamped_to_one(given: float, sent: float) -> None:
    assert to_anthropic(temperature=given)["temperature"] == sent


def test_default_max_tokens_applied() -> None:
    assert to_anthropic()["max_tokens"] == 4096
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert (
        openai_to_anthropic(body, upstream_model="c", default_max_tokens=1000)["max_tokens"] == 1000
    )
    assert to_anthropic(max_tokens=50)["max_tokens"] == 50
    assert to_anthropic(max_tokens=50, max_completion_tokens=70)["max_tokens"] == 70
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(max_tokens="lots")
    assert caught.value.param == "max_tokens"


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    plain = to_anthropic(tools=[WEATHER], parallel_tool_calls=False)
    assert plain["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    forced = to_anthropic(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert forced["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    refused = to_anthropic(tools=[WEATHER], tool_choice="none", parallel_tool_calls=False)
    assert refused["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in to_anthropic(tools=[WEATHER], parallel_tool_calls=True)
    # And back: Anthropic's flag becomes parallel_tool_calls false.
    back = to_openai(
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert back["tool_choice"] == "required"
    assert back["parallel_tool_calls"] is False


def test_tool_choice_mapping_both_ways() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    cases = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
    for openai_choice, anthropic_choice in [*cases.items(), ("named", None)]:
        choice = named if openai_choice == "named" else openai_choice
        expected = anthropic_choice or {"type": "tool", "name": "get_weather"}
        sent = to_anthropic(tools=[WEATHER], tool_choice=choice)
        assert sent["tool_choice"] == expected
        assert anthropic_to_openai(sent)["tool_choice"] == choice
    assert "tool_choice" not in to_anthropic(tool_choice="auto")  # no tools, no tool_choice
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(tools=[WEATHER], tool_choice={"type": "allowed_tools"})
    assert caught.value.param == "tool_choice"


def test_long_tool_names_shortened_and_mapped_back() -> None:
    tool = {"type": "function", "function": {"name": LONG_NAME, "parameters": {"type": "object"}}}
    call = {"id": "call_1", "type": "function", "function": {"name": LONG_NAME, "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]
    choice = {"type": "function", "function": {"name": LONG_NAME}}
    sent = to_anthropic(tools=[tool], messages=messages, tool_choice=choice)
    short = sent["tools"][0]["name"]
    digest = hashlib.sha256(LONG_NAME.encode()).hexdigest()[:8]
    assert short == LONG_NAME[:55] + "_" + digest
    assert len(short) == 64
    assert sent["tool_choice"] == {"type": "tool", "name": short}
    assert sent["messages"][1]["content"][0]["name"] == short
    # The upstream answers with the short name; the caller gets its own name back.
    names = ToolNames.from_tools([tool])
    message = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": short, "input": {}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    reply: Any = anthropic_to_openai_response(message, created=1, names=names)
    assert reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == LONG_NAME


def test_tool_names_with_invalid_characters_cleaned() -> None:
    name = "weather.lookup v2"
    short = shorten_tool_name(name)
    assert short.startswith("weather_lookup_v2_")
    assert ToolNames([name]).original(short) == name
    assert shorten_tool_name("get_weather") == "get_weather"
    assert ToolNames().original("unknown") == "unknown"


@given(st.text(max_size=120))
def test_shortened_names_always_valid(name: str) -> None:
    short = shorten_tool_name(name)
    assert 1 <= len(short) <= 64
    assert all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in short)
    assert shorten_tool_name(name) == short


def test_tool_ids_cleaned_consistently() -> None:
    call: dict[str, Any] = {"id": "call:abc.1/2", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": "{}"}
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call:abc.1/2", "content": "ok"},
    ]
    turns = to_anthropic(messages=messages)["messages"]
    assert turns[1]["content"][0]["id"] == "call_abc_1_2"
    assert turns[2]["content"][0]["tool_use_id"] == "call_abc_1_2"
    assert clean_id("").startswith("toolu_")


def test_n_greater_than_one_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(n=2)
    assert caught.value.param == "n"
    assert "n" not in to_anthropic(n=1)


def test_logprobs_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(logprobs=True, top_logprobs=2)
    assert caught.value.param == "logprobs"


def test_input_audio_rejected() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(messages=[{"role": "user", "content": [audio]}])
    assert caught.value.param == "messages[0][0]"


@pytest.mark.parametrize(
    "url",
    [
        "data:image/bmp;base64,Qk0=",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/png,not-base64",
        "ftp://example.com/a.png",
    ],
)
def test_bad_image_media_type_rejected(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(InvalidRequest):
        to_anthropic(messages=[{"role": "user", "content": [part]}])


def test_images_data_uri_and_url_round_trip() -> None:
    parts = [
        {"type": "text", "text": "Compare these"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
    ]
    sent = to_anthropic(messages=[{"role": "user", "content": parts}])
    assert sent["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
    ]
    back: Any = anthropic_to_openai(sent)
    back = back["messages"][0]["content"]
    assert back == [
        {"type": "text", "text": "Compare these"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
    ]


def test_pdf_file_becomes_document_and_back() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    sent = to_anthropic(messages=[{"role": "user", "content": [part]}])
    document = sent["messages"][0]["content"][0]
    assert document == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    }
    back: Any = anthropic_to_openai(sent)
    back = back["messages"][0]["content"][0]
    assert back["file"]["file_data"] == "data:application/pdf;base64,JVBERi0="
    text = {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}
    with pytest.raises(InvalidRequest):
        to_anthropic(messages=[{"role": "user", "content": [text]}])


def test_system_messages_hoisted_and_mid_conversation_kept() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "system", "content": "From now on, answer in German."},
        {"role": "user", "content": "And now?"},
    ]
    sent = to_anthropic(messages=messages)
    assert sent["system"] == "You are terse.\n\nAnswer in French."
    assert sent["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[system] From now on, answer in German."},
                {"type": "text", "text": "And now?"},
            ],
        },
    ]
    back: Any = anthropic_to_openai(sent)["messages"]
    assert back[0] == {"role": "system", "content": "You are terse.\n\nAnswer in French."}


def test_system_cache_control_keeps_text_blocks() -> None:
    cached = {"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}
    messages = [
        {"role": "system", "content": [cached]},
        {"role": "system", "content": "Short rule"},
        {"role": "user", "content": "hi"},
    ]
    assert to_anthropic(messages=messages)["system"] == [
        cached,
        {"type": "text", "text": "Short rule"},
    ]


def test_empty_text_blocks_dropped() -> None:
    messages = [
        {"role": "system", "content": "   "},
        {
            "role": "user",
            "content": [{"type": "text", "text": " \n"}, {"type": "text", "text": "hi"}],
        },
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "  "},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": ""}, {"type": "text", "text": "ok"}],
        },
    ]
    sent = to_anthropic(messages=messages)
    assert "system" not in sent
    assert sent["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok"},
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"city":"Paris"}', {"city": "Paris"}),
        ("", {}),
        ("   ", {}),
        (None, {}),
        ("[1, 2]", {"value": [1, 2]}),
        ('"Paris"', {"value": "Paris"}),
        ("{'city': 'Paris'", {"raw": "{'city': 'Paris'"}),
        ({"city": "Paris"}, {"city": "Paris"}),
    ],
)
def test_unparseable_tool_arguments_never_sent_as_string(arguments: Any, expected: Any) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    block = to_anthropic(messages=messages)["messages"][1]["content"][0]
    assert block["input"] == expected
    assert isinstance(block["input"], dict)


def test_response_format_json_modes() -> None:
    sent = to_anthropic(response_format={"type": "json_object"})
    assert sent["system"] == JSON_INSTRUCTION
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    spec = {"name": "thing", "schema": schema, "strict": True}
    structured = to_anthropic(response_format={"type": "json_schema", "json_schema": spec})
    assert structured["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    back: Any = anthropic_to_openai(structured)["response_format"]
    assert back == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert "system" not in to_anthropic(response_format={"type": "text"})


def test_fields_outside_the_allowlist_dropped() -> None:
    sent = to_anthropic(
        seed=3,
        frequency_penalty=0.5,
        logit_bias={"1": 2},
        stream_options={"include_usage": True},
        store=True,
        user="alice",
        top_p=0.9,
        stream=True,
    )
    assert set(sent) == {"model", "max_tokens", "messages", "metadata", "top_p", "stream"}
    assert sent["metadata"] == {"user_id": "alice"}
    assert sent["model"] == "claude-x"


def test_strict_is_dropped_and_missing_parameters_defaulted() -> None:
    bare = {"type": "function", "function": {"name": "ping", "strict": True}}
    assert to_anthropic(tools=[bare])["tools"] == [
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}}
    ]
    with pytest.raises(InvalidRequest):
        to_anthropic(tools=[{"type": "custom", "custom": {"name": "grammar"}}])


@pytest.mark.parametrize(
    "message",
    [
        {"role": "function", "name": "f", "content": "x"},
        {"role": "tool", "content": "no id"},
        {"role": "user", "content": [{"type": "video", "video": {}}]},
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://a"}}]},
    ],
)
def test_unsupported_openai_messages_rejected(message: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        to_anthropic(messages=[message])


# ------------------------------------------------------------------- Anthropic → OpenAI


def test_missing_max_tokens_rejected_for_anthropic_callers() -> None:
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidRequest) as caught:
        anthropic_to_openai(body)
    assert caught.value.param == "max_tokens"
    with pytest.raises(InvalidRequest):
        anthropic_to_openai(body | {"max_tokens": "100"})
    assert anthropic_to_openai(body | {"max_tokens": 100})["max_tokens"] == 100


@pytest.mark.parametrize(
    "messages",
    [
        "hi",
        [{"role": "system", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        ["hi"],
    ],
)
def test_anthropic_messages_must_be_user_or_assistant_turns(messages: Any) -> None:
    with pytest.raises(InvalidRequest):
        to_openai(messages=messages)


def test_redacted_and_thinking_blocks_dropped() -> None:
    assistant = [
        {"type": "thinking", "thinking": "Let me think", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    sent = to_openai(
        messages=[{"role": "user", "content": "go"}, {"role": "assistant", "content": assistant}]
    )
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    only_thinking = [{"type": "thinking", "thinking": "hmm", "signature": "s"}]
    dropped = to_openai(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": only_thinking},
        ]
    )
    assert len(dropped["messages"]) == 1


def test_tool_results_become_tool_messages_before_the_user_text() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    user = [
        {"type": "text", "text": "Here you go."},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "is_error": True,
            "content": [{"type": "text", "text": "camera offline"}, image],
        },
    ]
    sent = to_openai(messages=[{"role": "user", "content": user}])
    assert sent["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "ERROR: camera offline"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here you go."},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
    ]


def test_server_tools_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_openai(tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert caught.value.param == "tools[0]"


def test_anthropic_sampling_and_metadata_mapped() -> None:
    sent = to_openai(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        temperature=0.2,
        top_p=0.8,
        top_k=5,
        stop_sequences=["a", "b", "c", "d", "e"],
        metadata={"user_id": "u-1"},
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    assert sent == {
        "model": "claude-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.8,
        "stop": ["a", "b", "c", "d"],
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert (
        anthropic_to_openai({"max_tokens": 1, "messages": []}, upstream_model="gpt")["model"]
        == "gpt"
    )


# ------------------------------------------------------------------- golden round trips


def test_golden_openai_tool_loop_round_trip() -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": tool_loop(
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            {"role": "user", "content": "Thanks"},
        ),
        "tools": [WEATHER],
        "tool_choice": "auto",
        "max_tokens": 256,
    }
    body["messages"].insert(0, {"role": "system", "content": "Be helpful."})
    sent = openai_to_anthropic(body, upstream_model="claude-x")
    assert sent == {
        "model": "claude-x",
        "max_tokens": 256,
        "system": "Be helpful.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "auto"},
    }
    back: Any = anthropic_to_openai(sent)
    assert back["messages"] == [
        {"role": "system", "content": "Be helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": body["messages"][2]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
    ]
    assert back["tools"] == [WEATHER]
    assert back["tool_choice"] == "auto"


def test_golden_anthropic_round_trip() -> None:
    body: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 512,
        "system": "Be helpful.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
            },
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "temperature": 0.5,
    }
    sent: Any = anthropic_to_openai(body)
    assert sent["messages"] == [
        {"role": "system", "content": "Be helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
    ]
    again = openai_to_anthropic(sent, upstream_model="claude-x")
    assert again == body | {
        "messages": [
            body["messages"][0],
            body["messages"][1],
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
            },
        ],
    }


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [
        ("low", 4096, 2048),
        ("high", 4096, 4095),  # within max_tokens
        ("medium", 1024, None),  # no room for Anthropic's minimum budget
        ("none", 4096, None),
        (None, 4096, None),
    ],
)
def test_reasoning_effort_becomes_thinking(
    effort: str | None, max_tokens: int, budget: int | None
) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "temperature": 0.2,
        "reasoning_effort": effort,
    }
    out = openai_to_anthropic(body, upstream_model="claude")
    if budget is None:
        assert "thinking" not in out and out["temperature"] == 0.2
    else:
        assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in out  # Anthropic takes none with thinking
