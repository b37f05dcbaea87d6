"""Usage, generated text and error bodies read from OpenAI Chat Completions payloads."""

from __future__ import annotations

import json

import pytest

from lowart.formats.openai import (
    MAX_TOKENS,
    Usage,
    completion_text_from_body,
    completion_text_from_chunks,
    error_body,
    prompt_text,
    sane_tokens,
    usage_from_body,
    usage_from_chunk,
)

FULL_USAGE = (
    b'{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,'
    b'"prompt_tokens_details":{"cached_tokens":64,"audio_tokens":0}}'
)


def body(usage: bytes) -> bytes:
    return b'{"id":"c","object":"chat.completion","choices":[],"usage":' + usage + b"}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (17, 17),
        (-5, 0),
        (2**40, MAX_TOKENS),
        (True, None),
        (False, None),
        (1.0, None),
        ("12", None),
        (None, None),
    ],
)
def test_sane_tokens(value: object, expected: int | None) -> None:
    assert sane_tokens(value) == expected


def test_usage_from_body() -> None:
    usage = usage_from_body(body(FULL_USAGE))
    assert usage == Usage(82, 17, 64)
    assert usage is not None
    assert usage.total_tokens == 99


@pytest.mark.parametrize(
    "raw",
    [
        body(b"null"),
        b'{"id":"c","choices":[]}',
        body(b'{"completion_tokens":3}'),
        body(b'{"prompt_tokens":true,"completion_tokens":3}'),
        body(b'{"prompt_tokens":1.5,"completion_tokens":3}'),
        body(b"[1, 2]"),
        b"not json",
        b"[]",
    ],
)
def test_usage_from_body_without_usable_usage(raw: bytes) -> None:
    assert usage_from_body(raw) is None


def test_usage_from_body_clamps_and_caps() -> None:
    raw = body(b'{"prompt_tokens":-5,"completion_tokens":99999999999999999999}')
    assert usage_from_body(raw) == Usage(0, MAX_TOKENS)
    cached = body(
        b'{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}'
    )
    assert usage_from_body(cached) == Usage(3, 1, 3)  # cached tokens are a subset of the prompt
    odd = body(b'{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":"x"}')
    assert usage_from_body(odd) == Usage(3, 1)


def test_usage_from_chunk() -> None:
    ordinary = b'{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}'
    assert usage_from_chunk(ordinary) == (None, False)
    for null in (b'"usage":null', b'"usage": null'):
        assert usage_from_chunk(b'{"choices":[],' + null + b"}") == (None, False)
    last = b'{"id":"c","choices":[ ],"usage":' + FULL_USAGE + b"}"
    assert usage_from_chunk(last) == (Usage(82, 17, 64), True)
    every = (
        b'{"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}'
    )
    assert usage_from_chunk(every) == (Usage(1, 2), False)
    assert usage_from_chunk(
        b'{"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":2}}'
    ) == (
        Usage(0, 2),
        True,
    )
    assert usage_from_chunk(b'{"usage":{"prompt_tokens":1}, "choices": []}') == (None, True)
    assert usage_from_chunk(b'{"usage": {broken') == (None, False)


def test_usage_key_in_content_is_not_usage() -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 5}
    chunk = json.dumps({"choices": [{"delta": {"content": '"usage":null'}}], "usage": usage})
    assert b'"usage":null' not in chunk.encode()  # JSON escapes the quotes inside the string
    assert usage_from_chunk(chunk.encode()) == (Usage(4, 5), False)


def test_completion_text_from_body() -> None:
    raw = json.dumps(
        {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": None}},
                {
                    "index": 1,
                    "message": {
                        "content": None,
                        "refusal": "no",
                        "tool_calls": [
                            {
                                "id": "a",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                },
            ]
        }
    ).encode()
    assert completion_text_from_body(raw) == "Hello\nno\nf\n{}"
    assert completion_text_from_body(b"garbage") == ""


def delta(**fields: object) -> bytes:
    return json.dumps({"choices": [{"index": 0, "delta": fields}]}).encode()


def call(index: int, arguments: str, name: str | None = None) -> dict[str, object]:
    head = {"id": f"call_{index}", "type": "function"} if name else {}
    function = {"name": name, "arguments": arguments} if name else {"arguments": arguments}
    return {"index": index, **head, "function": function}


def test_completion_text_from_chunks() -> None:
    chunks = [
        delta(role="assistant", content=""),
        delta(content="Hel"),
        b"{malformed",
        delta(content="lo"),
        delta(tool_calls=[call(1, "", "g")]),
        delta(tool_calls=[call(0, '{"x"', "f")]),
        delta(tool_calls=[call(0, ": 1}")]),
        delta(tool_calls=[call(1, "{}")]),
        b'{"choices":[],"usage":null}',
        b"[DONE]",
    ]
    assert completion_text_from_chunks(chunks) == 'Hello\nf\n{"x": 1}\ng\n{}'
    assert completion_text_from_chunks([]) == ""


def test_error_body() -> None:
    assert json.loads(error_body("bad", "invalid_request_error", None, "model")) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": None}
    }
    assert list(json.loads(error_body("m", "t", "c"))["error"]) == [
        "message",
        "type",
        "param",
        "code",
    ]


def test_prompt_text() -> None:
    request: dict[str, object] = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "content": "18C"},
            "not a message",
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert prompt_text(request) == (
        'Be brief.\nHi\nf\n{}\n18C\n[{"type":"function","function":{"name":"f"}}]'
    )
    assert prompt_text({}) == ""
