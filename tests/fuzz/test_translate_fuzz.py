"""Fuzzing the translators (formats/translate_*.py, anthropic_events.py) and the upstream-facing
parsers of formats/openai.py with arbitrary JSON: they answer or refuse with the documented
error, never a KeyError or TypeError (which would be a 500), and what they answer is valid.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lowart.errors import InvalidRequest, UpstreamError
from lowart.formats.anthropic_events import message_events
from lowart.formats.openai import (
    completion_text_from_chunks,
    completion_usage,
    last_user_text,
    prompt_text,
    usage_from_chunk,
)
from lowart.formats.request_fields import ANTHROPIC_MESSAGES_FIELDS, OPENAI_CHAT_FIELDS
from lowart.formats.sse import SSEEvent, SSEParser
from lowart.formats.translate_request import anthropic_to_openai, openai_to_anthropic
from lowart.formats.translate_response import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)
from lowart.formats.translate_stream import AnthropicToOpenAI, OpenAIToAnthropic
from tests.fuzz.strategies import (
    ANTHROPIC_MESSAGE_SEED,
    ANTHROPIC_SEED,
    OPENAI_COMPLETION_SEED,
    OPENAI_SEED,
    chat_bodies,
    fuzz_examples,
    json_objects,
    json_values,
    mutated,
    small_objects,
)

FUZZ = settings(max_examples=fuzz_examples(150), deadline=None)
OPENAI_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ANTHROPIC_ROLES = ("user", "assistant", "system")


def _events(stream: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return [*parser.feed(stream), *parser.close()]


def check_openai_to_anthropic(body: dict[str, Any]) -> None:
    try:
        out = openai_to_anthropic(body, upstream_model="claude")
    except InvalidRequest:
        return
    msgspec.json.encode(out)
    assert set(out) <= ANTHROPIC_MESSAGES_FIELDS
    assert isinstance(out["max_tokens"], int) and out["max_tokens"] >= 1
    for message in out["messages"]:
        assert message["role"] in ("user", "assistant")
        assert isinstance(message["content"], str | list) and message["content"]


def check_anthropic_to_openai(body: dict[str, Any]) -> None:
    try:
        out = anthropic_to_openai(body, upstream_model="gpt")
    except InvalidRequest:
        return
    msgspec.json.encode(out)
    assert set(out) <= OPENAI_CHAT_FIELDS
    for message in out["messages"]:
        assert message["role"] in ("system", "user", "assistant", "tool")
        for part in message["content"] if isinstance(message["content"], list) else ():
            url = part.get("image_url", {}).get("url", "")
            assert isinstance(url, str) and "{" not in url and "[" not in url, part


def check_responses(body: dict[str, Any]) -> None:
    msgspec.json.encode(anthropic_to_openai_response(body, created=1))
    with contextlib.suppress(UpstreamError):
        msgspec.json.encode(openai_to_anthropic_response(body))


def check_message_events(message: dict[str, Any]) -> None:
    """A whole Message told as events: each event's data is a JSON object of its own type."""
    for event in _events(b"".join(message_events(message))):
        data = msgspec.json.decode(event.data)
        assert isinstance(data, dict) and data["type"] == event.event


def check_upstream_parsers(data: bytes) -> None:
    usage_from_chunk(data)
    completion_text_from_chunks([data])
    with contextlib.suppress(ValueError):
        completion_usage(data)


def check_prompt_text(body: dict[str, Any]) -> None:
    assert isinstance(prompt_text(body), str)
    assert isinstance(last_user_text(body), str)


@FUZZ
@given(st.one_of(chat_bodies(OPENAI_ROLES), json_objects))
@example({"messages": [{"role": "assistant", "content": [{"type": "refusal"}]}]})
def test_openai_to_anthropic_answers_or_refuses(body: dict[str, Any]) -> None:
    check_openai_to_anthropic(body)


@FUZZ
@given(st.one_of(chat_bodies(ANTHROPIC_ROLES), json_objects), st.integers(0, 10))
def test_anthropic_to_openai_answers_or_refuses(body: dict[str, Any], max_tokens: int) -> None:
    check_anthropic_to_openai(body)
    check_anthropic_to_openai({**body, "max_tokens": max_tokens})


# Well-formed bodies with values swapped for any JSON reach every branch: a content block's
# ``type`` that is a list once raised TypeError (unhashable) where a 400 was due.


@FUZZ
@given(mutated(OPENAI_SEED))
@example({**OPENAI_SEED, "messages": [{"role": ["system"], "content": "x"}]})
@example({**OPENAI_SEED, "messages": [{"role": {}, "content": "x"}, *OPENAI_SEED["messages"]]})
def test_openai_to_anthropic_of_a_mutated_body(body: dict[str, Any]) -> None:
    check_openai_to_anthropic(body)


@FUZZ
@given(mutated(ANTHROPIC_SEED))
@example({**ANTHROPIC_SEED, "messages": [{"role": "user", "content": [{"type": ["text"]}]}]})
@example({**ANTHROPIC_SEED, "messages": [{"role": "assistant", "content": [{"type": {}}]}]})
def test_anthropic_to_openai_of_a_mutated_body(body: dict[str, Any]) -> None:
    check_anthropic_to_openai(body)


@FUZZ
@given(st.one_of(mutated(OPENAI_COMPLETION_SEED), mutated(ANTHROPIC_MESSAGE_SEED)))
def test_mutated_responses_translate_or_refuse(body: dict[str, Any]) -> None:
    check_responses(body)
    check_message_events(body)
    check_upstream_parsers(msgspec.json.encode(body))


@FUZZ
@given(st.one_of(mutated(OPENAI_SEED), mutated(ANTHROPIC_SEED)))
def test_prompt_text_of_a_mutated_body(body: dict[str, Any]) -> None:
    check_prompt_text(body)


@FUZZ
@given(json_objects)
def test_whole_responses_translate_or_refuse(body: dict[str, Any]) -> None:
    check_responses(body)


@FUZZ
@given(json_objects)
@example({"usage": True})  # found: usage that is not an object raised TypeError
@example({"content": 42})  # found: content that is not a list raised TypeError
def test_message_events_of_any_message(message: dict[str, Any]) -> None:
    check_message_events(message)


@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values().map(msgspec.json.encode)))
@example(b'{"usage": {"prompt_tokens": 1e400}}')
def test_upstream_parsers_never_raise_unexpectedly(data: bytes) -> None:
    check_upstream_parsers(data)


@FUZZ
@given(st.one_of(chat_bodies(OPENAI_ROLES), chat_bodies(ANTHROPIC_ROLES), json_objects))
def test_prompt_text_of_any_body(body: dict[str, Any]) -> None:
    check_prompt_text(body)


# -- streams ------------------------------------------------------------------------------------

anthropic_event_names = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
        "other",
    ]
)


@st.composite
def anthropic_events(draw: st.DrawFn) -> list[SSEEvent]:
    """Events named like Anthropic's, with JSON (mostly objects, typed like the name) or junk."""
    events = []
    for name in draw(st.lists(anthropic_event_names, max_size=8)):
        payload = draw(small_objects)
        if draw(st.booleans()):
            payload = {**payload, "type": name}
        junk = draw(st.integers(0, 9)) == 0
        data = draw(st.binary(max_size=10)) if junk else msgspec.json.encode(payload)
        events.append(SSEEvent(event=name, data=data))
    return events


def check_anthropic_stream(events: list[SSEEvent], include_usage: bool) -> None:
    translator = AnthropicToOpenAI(include_usage=include_usage, created=1)
    out = b""
    try:
        for event in events:
            out += translator.feed(event)
    except UpstreamError:
        return
    for event in _events(out):
        if event.data != b"[DONE]":
            assert isinstance(msgspec.json.decode(event.data), dict)


def check_openai_stream(datas: list[bytes]) -> None:
    translator = OpenAIToAnthropic(model="m")
    out = b""
    try:
        for data in datas:
            out += translator.feed(data)
        out += translator.finish()
    except UpstreamError:
        return
    for event in _events(out):
        decoded = msgspec.json.decode(event.data)
        assert isinstance(decoded, dict) and decoded["type"] == event.event


@FUZZ
@given(anthropic_events(), st.booleans())
def test_anthropic_events_translate_or_fail_as_upstream_errors(
    events: list[SSEEvent], include_usage: bool
) -> None:
    check_anthropic_stream(events, include_usage)


openai_chunks = st.lists(
    st.one_of(
        st.just(b"[DONE]"),
        st.binary(max_size=10),
        small_objects.map(msgspec.json.encode),
        st.builds(
            lambda delta, finish, usage: msgspec.json.encode(
                {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage}
            ),
            small_objects,
            st.sampled_from([None, "stop", "length", "tool_calls", 3]),
            st.none() | small_objects,
        ),
    ),
    max_size=8,
)


@FUZZ
@given(openai_chunks)
def test_openai_chunks_translate_or_fail_as_upstream_errors(datas: list[bytes]) -> None:
    check_openai_stream(datas)


# -- round trips where they hold ----------------------------------------------------------------

texts = st.text(min_size=1, max_size=20).filter(str.strip)


@FUZZ
@given(st.lists(texts, min_size=1, max_size=6), st.integers(1, 10_000))
def test_alternating_text_turns_round_trip(turns: list[str], max_tokens: int) -> None:
    """OpenAI → Anthropic → OpenAI keeps a user/assistant text conversation as it was."""
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": role, "content": text} for role, text in zip(roles, turns, strict=False)]
    body = {"model": "m", "messages": messages, "max_tokens": max_tokens}
    back = anthropic_to_openai(openai_to_anthropic(body, upstream_model="c"), upstream_model="m")
    assert back["messages"] == messages
    assert back["max_tokens"] == max_tokens


@FUZZ
@given(st.lists(st.text(max_size=10), max_size=8), st.integers(0, 1000), st.integers(0, 1000))
def test_streamed_text_survives_both_stream_translations(
    deltas: list[str], prompt: int, completion: int
) -> None:
    """OpenAI chunks → Anthropic events → OpenAI chunks: the same text and usage come out."""
    chunks = [
        msgspec.json.encode({"choices": [{"index": 0, "delta": {"content": d}}]}) for d in deltas
    ]
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    chunks.append(msgspec.json.encode({"choices": [], "usage": usage}))
    to_anthropic = OpenAIToAnthropic(model="m")
    middle = b"".join(to_anthropic.feed(c) for c in [*chunks, b"[DONE]"])
    to_openai = AnthropicToOpenAI(include_usage=True, created=1)
    final = b"".join(to_openai.feed(e) for e in _events(middle))
    out = [msgspec.json.decode(e.data) for e in _events(final) if e.data != b"[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out if c.get("choices"))
    assert text == "".join(deltas)
    assert out[-1]["usage"]["prompt_tokens"] == prompt
    assert out[-1]["usage"]["completion_tokens"] == completion
    assert final.endswith(b"data: [DONE]\n\n")
