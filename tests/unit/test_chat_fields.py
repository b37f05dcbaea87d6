"""Validation of the chat fields the gateway acts on, and of request bodies as JSON objects."""

from __future__ import annotations

from typing import Any

import pytest

from lowart.api.asgi import parse_object
from lowart.api.chat import MAX_TOKENS_CAP, chat_fields
from lowart.errors import InvalidRequest
from lowart.pipeline.operation import OperationFields

MESSAGES = [{"role": "user", "content": "hi"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt", "messages": MESSAGES} | fields


def test_minimal_body() -> None:
    assert chat_fields(body()) == OperationFields(
        model="gpt", stream=False, wants_usage=False, is_async=False
    )


def test_full_valid_body() -> None:
    fields = chat_fields(
        body(
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=MAX_TOKENS_CAP,
            max_completion_tokens=1,
            n=1,
            temperature=0,
            top_p=1.0,
            tools=[{"type": "function", "function": {"name": "f"}}],
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": None, "tool_calls": []},
            ],
            unknown_vendor_field={"passes": "through"},
        )
    )
    assert fields == OperationFields(model="gpt", stream=True, wants_usage=True, is_async=False)


def test_include_usage_false() -> None:
    fields = chat_fields(body(stream=True, stream_options={"include_usage": False}))
    assert fields.wants_usage is False


def test_stream_options_without_include_usage() -> None:
    assert chat_fields(body(stream=True, stream_options={})).wants_usage is False


def test_async_flag_is_read() -> None:
    assert chat_fields(body(**{"async": True})).is_async is True
    assert chat_fields(body(**{"async": False})).is_async is False


def test_explicit_nulls_are_defaults() -> None:
    fields = chat_fields(body(stream=None, max_tokens=None, stream_options=None, tools=None))
    assert fields == OperationFields(model="gpt", stream=False, wants_usage=False, is_async=False)


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": node}
    return node


def _invalid(payload: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        chat_fields(payload)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        (body(model=""), "model"),
        (body(model="   "), "model"),
        (body(model=5), "model"),
        (body(model=None), "model"),
        ({"model": "gpt"}, "messages"),
        (body(messages=[]), "messages"),
        (body(messages=None), "messages"),
        (body(messages="hi"), "messages"),
        (body(messages={"role": "user"}), "messages"),
        (body(messages=[{"content": "no role"}]), "messages"),
        (body(messages=[{"role": 1, "content": "x"}]), "messages"),
        (body(messages=["hi"]), "messages"),
        (body(messages=[*MESSAGES, None]), "messages"),
        (body(stream="yes"), "stream"),
        (body(stream=1), "stream"),
        (body(stream="true"), "stream"),
        (body(max_tokens=-1), "max_tokens"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens="10"), "max_tokens"),
        (body(max_tokens=True), "max_tokens"),
        (body(max_tokens=2**63), "max_tokens"),
        (body(max_tokens=MAX_TOKENS_CAP + 1), "max_tokens"),
        (body(max_tokens=10.0), "max_tokens"),
        (body(max_completion_tokens=0), "max_completion_tokens"),
        (body(n=0), "n"),
        (body(n=1000), "n"),
        (body(temperature=3), "temperature"),
        (body(temperature=-0.1), "temperature"),
        (body(temperature="1"), "temperature"),
        (body(temperature=float("nan")), "temperature"),
        (body(temperature=True), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(top_p=float("inf")), "top_p"),
        (body(stream_options={"include_usage": True}), "stream_options"),
        (body(stream=False, stream_options={"include_usage": True}), "stream_options"),
        (body(stream=True, stream_options="usage"), "stream_options"),
        (body(stream=True, stream_options={"include_usage": "yes"}), "include_usage"),
        (body(tools={"type": "function"}), "tools"),
        (body(**{"async": "yes"}), "async"),
        (body(response_format={"type": "json_schema", "schema": _nested(70)}), "response_format"),
    ],
)
def test_invalid_fields(payload: dict[str, Any], param: str) -> None:
    err = _invalid(payload)
    assert err.param == param
    assert err.message


def test_stream_options_without_stream_is_a_400() -> None:
    err = _invalid(body(stream_options={"include_usage": True}))
    assert err.status == 400
    assert "stream" in err.message


# --- parse_object --------------------------------------------------------------------------


def test_parse_object() -> None:
    assert parse_object(b'{"model": "gpt", "n": 1}') == {"model": "gpt", "n": 1}


def test_bom_is_stripped() -> None:
    assert parse_object(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_surrounding_whitespace_is_fine() -> None:
    assert parse_object(b' \r\n {"a": [1, 2]} \n') == {"a": [1, 2]}


def test_non_ascii_text_is_decoded() -> None:
    assert parse_object('{"c": "héllo 🌍"}'.encode()) == {"c": "héllo 🌍"}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"  \n ", id="blank"),
        pytest.param(b"\xef\xbb\xbf", id="bom-only"),
        pytest.param(b"[]", id="empty-array"),
        pytest.param(b'[{"a": 1}]', id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"42", id="number"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"true", id="bool"),
        pytest.param(b'{"a": ', id="truncated"),
        pytest.param(b'{"model": "gpt"', id="unclosed"),
        pytest.param(b'{"a": 1} {"b": 2}', id="trailing-data"),
        pytest.param(b"{'a': 1}", id="single-quotes"),
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b"model=gpt&stream=true", id="form-encoded"),
        pytest.param(b'{"a": "\xff\xfe"}', id="invalid-utf8-in-string"),
        pytest.param(b"\xff\xfe{}", id="invalid-utf8-prefix"),
        pytest.param('{"a": 1}'.encode("utf-16"), id="utf16"),
        pytest.param(b'{"a": "\\ud800"}', id="lone-surrogate-value"),
        pytest.param(b'{"\\ud800": 1}', id="lone-surrogate-key"),
        pytest.param(b'{"a": "\\udc00x"}', id="lone-low-surrogate"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-arrays"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="deep-objects"),
        pytest.param(b'{"a":' + b"[" * 100_000, id="deep-truncated"),
    ],
)
def test_parse_object_refuses(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_object(raw)
    assert info.value.status == 400
    assert info.value.message
