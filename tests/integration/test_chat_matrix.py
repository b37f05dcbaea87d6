"""Both SDKs against both vendors: {OpenAI SDK, Anthropic SDK} x {OpenAI, Anthropic vendor} x
{whole, streamed} x {plain text, a tool round trip}, with billing exact in every pair."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway

VENDORS = ("openai", "anthropic")
QUESTION = "what is the weather"
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    app = FakeAnthropic()
    with run_in_thread(app) as server:
        yield app, server.base_url


@pytest.fixture
def gw(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: tuple[FakeAnthropic, str],
) -> Gateway:
    gateway = make_gateway()
    for vendor, base in (("openai", fake_openai[1]), ("anthropic", fake_anthropic[1])):
        kind = "OpenAI" if vendor == "openai" else "Anthropic"
        gateway.add_model(
            f"{vendor}-text", kind, base_url=base, api_key="sk-v", upstream_model="ok"
        )
        gateway.add_model(
            f"{vendor}-tools", kind, base_url=base, api_key="sk-v", upstream_model="tools"
        )
        gateway.add_model(
            f"{vendor}-bad", kind, base_url=base, api_key="sk-v", upstream_model="error-400"
        )
    return gateway


def _openai(gw: Gateway, key: str) -> openai.OpenAI:
    return gw.openai(key)


def _anthropic(gw: Gateway, key: str) -> anthropic.Anthropic:
    return gw.anthropic(key)


def _openai_text(client: openai.OpenAI, model: str, stream: bool) -> tuple[str, int]:
    messages: Any = [{"role": "user", "content": QUESTION}]
    if not stream:
        answer = client.chat.completions.create(model=model, messages=messages)
        assert answer.usage is not None
        return answer.choices[0].message.content or "", answer.usage.total_tokens
    with client.chat.completions.stream(
        model=model, messages=messages, stream_options={"include_usage": True}
    ) as s:
        final = s.get_final_completion()
    assert final.usage is not None
    return final.choices[0].message.content or "", final.usage.total_tokens


def _anthropic_text(client: anthropic.Anthropic, model: str, stream: bool) -> tuple[str, int]:
    messages: Any = [{"role": "user", "content": QUESTION}]
    if not stream:
        message = client.messages.create(model=model, max_tokens=100, messages=messages)
    else:
        with client.messages.stream(model=model, max_tokens=100, messages=messages) as s:
            streamed = "".join(s.text_stream)
            message = s.get_final_message()
        assert streamed == message.content[0].text  # type: ignore[union-attr]
    text = "".join(b.text for b in message.content if b.type == "text")
    usage = message.usage
    total = usage.input_tokens + (usage.cache_read_input_tokens or 0) + usage.output_tokens
    return text, total


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_openai_sdk_plain_text(gw: Gateway, vendor: str, stream: bool) -> None:
    text, total = _openai_text(_openai(gw, gw.create_user("u1")), f"{vendor}-text", stream)
    assert text == f"Hello from fake: {QUESTION}"
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id='u1'") == [(total,)]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_anthropic_sdk_plain_text(gw: Gateway, vendor: str, stream: bool) -> None:
    text, total = _anthropic_text(_anthropic(gw, gw.create_user("u2")), f"{vendor}-text", stream)
    assert text == f"Hello from fake: {QUESTION}"
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id='u2'") == [(total,)]


def _openai_tool_call(client: openai.OpenAI, model: str, stream: bool) -> Any:
    messages: Any = [{"role": "user", "content": QUESTION}]
    if not stream:
        return client.chat.completions.create(
            model=model, messages=messages, tools=OPENAI_TOOLS
        ).choices[0]
    with client.chat.completions.stream(model=model, messages=messages, tools=OPENAI_TOOLS) as s:  # type: ignore[arg-type]
        return s.get_final_completion().choices[0]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_openai_sdk_tool_round_trip(gw: Gateway, vendor: str, stream: bool) -> None:
    client = _openai(gw, gw.create_user())
    choice = _openai_tool_call(client, f"{vendor}-tools", stream)
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    follow_up: Any = [
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    if stream:
        with client.chat.completions.stream(
            model=f"{vendor}-tools", messages=follow_up, tools=OPENAI_TOOLS
        ) as s:  # type: ignore[arg-type]
            answer = s.get_final_completion().choices[0].message.content
    else:
        answer = (
            client.chat.completions.create(
                model=f"{vendor}-tools", messages=follow_up, tools=OPENAI_TOOLS
            )
            .choices[0]
            .message.content
        )  # type: ignore[arg-type]
    assert answer == "Tool said: 18C and sunny"


def _anthropic_message(client: anthropic.Anthropic, model: str, messages: Any, stream: bool) -> Any:
    if not stream:
        return client.messages.create(
            model=model, max_tokens=200, messages=messages, tools=ANTHROPIC_TOOLS
        )  # type: ignore[arg-type]
    with client.messages.stream(
        model=model, max_tokens=200, messages=messages, tools=ANTHROPIC_TOOLS
    ) as s:  # type: ignore[arg-type]
        return s.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_anthropic_sdk_tool_round_trip(gw: Gateway, vendor: str, stream: bool) -> None:
    client = _anthropic(gw, gw.create_user())
    messages: Any = [{"role": "user", "content": QUESTION}]
    message = _anthropic_message(client, f"{vendor}-tools", messages, stream)
    assert message.stop_reason == "tool_use"
    tool_use = next(b for b in message.content if b.type == "tool_use")
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"}
    messages += [
        {
            "role": "assistant",
            "content": [b.model_dump(exclude_none=True) for b in message.content],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C and sunny"}
            ],
        },
    ]
    answer = _anthropic_message(client, f"{vendor}-tools", messages, stream)
    assert answer.content[0].text == "Tool said: 18C and sunny"
    assert answer.stop_reason == "end_turn"


@pytest.mark.parametrize("vendor", VENDORS)
def test_errors_keep_their_meaning_across_formats(gw: Gateway, vendor: str) -> None:
    key = gw.create_user()
    with pytest.raises(openai.NotFoundError):
        _openai(gw, key).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.NotFoundError) as missing:
        _anthropic(gw, key).messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad_openai:
        _openai(gw, key).chat.completions.create(
            model=f"{vendor}-bad", messages=[{"role": "user", "content": "x"}]
        )
    assert "fake bad request" in str(bad_openai.value)
    with pytest.raises(anthropic.BadRequestError) as bad_anthropic:
        _anthropic(gw, key).messages.create(
            model=f"{vendor}-bad", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert "fake bad request" in str(bad_anthropic.value)


def test_anthropic_models_list_and_count_tokens(gw: Gateway) -> None:
    client = _anthropic(gw, gw.create_user())
    ids = [m.id for m in client.models.list()]
    assert "anthropic-text" in ids and "mock" in ids
    count = client.messages.count_tokens(
        model="mock", messages=[{"role": "user", "content": QUESTION}]
    )
    assert count.input_tokens > 0


def test_x_api_key_header_is_accepted(gw: Gateway) -> None:
    key = gw.create_user()
    with gw.client(None) as client:
        response = client.post(
            "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={
                "model": "mock",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"
    assert response.headers["request-id"] == response.headers["x-request-id"]


@pytest.fixture
def gw_faults(gw: Gateway, fake_anthropic: tuple[FakeAnthropic, str]) -> Gateway:
    base = fake_anthropic[1]
    gw.add_model(
        "anthropic-broken",
        "Anthropic",
        base_url=base,
        api_key="sk-v",
        upstream_model="midstream_error-2",
    )
    gw.add_model(
        "anthropic-cached", "Anthropic", base_url=base, api_key="sk-v", upstream_model="cache-100-7"
    )
    return gw


def test_mid_stream_error_reaches_each_caller_in_its_form(gw_faults: Gateway) -> None:
    key = gw_faults.create_user()
    with (
        pytest.raises(anthropic.APIStatusError) as anthropic_err,
        _anthropic(gw_faults, key).messages.stream(
            model="anthropic-broken",
            max_tokens=50,
            messages=[{"role": "user", "content": QUESTION}],
        ) as stream,
    ):
        list(stream.text_stream)
    assert anthropic_err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(openai.APIError):
        list(
            _openai(gw_faults, key).chat.completions.create(
                model="anthropic-broken",
                stream=True,
                messages=[{"role": "user", "content": QUESTION}],
            )
        )
    gw_faults.flush()
    statuses = gw_faults.sql(
        "SELECT status FROM usage_records WHERE served_model = ?", ("anthropic-broken",)
    )
    assert statuses == [("partial",), ("partial",)]


def test_cache_tokens_are_billed_once(gw_faults: Gateway) -> None:
    key = gw_faults.create_user("cacher")
    answer = _openai(gw_faults, key).chat.completions.create(
        model="anthropic-cached", messages=[{"role": "user", "content": QUESTION}]
    )
    assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 100
    words = len(QUESTION.split())
    assert answer.usage.prompt_tokens == words + 100 + 7  # input + cache read + cache creation
    gw_faults.flush()
    assert gw_faults.sql("SELECT token_used FROM users WHERE user_id='cacher'") == [
        (answer.usage.total_tokens,)
    ]


def test_anthropic_headers_pass_only_between_anthropic_ends(
    gw: Gateway, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, _ = fake_anthropic
    key = gw.create_user()
    _anthropic(gw, key).messages.create(
        model="anthropic-text",
        max_tokens=10,
        messages=[{"role": "user", "content": "one"}],
        extra_headers={"anthropic-beta": "tools-2024-04-04"},
    )
    assert fake.calls[-1]["headers"]["anthropic-beta"] == "tools-2024-04-04"
    assert fake.calls[-1]["headers"]["x-api-key"] == "sk-v"
    assert key not in json.dumps(fake.calls[-1]["headers"])
    _openai(gw, key).chat.completions.create(
        model="anthropic-text",
        messages=[{"role": "user", "content": "two"}],
        extra_headers={"anthropic-beta": "tools-2024-04-04"},
    )
    assert "anthropic-beta" not in fake.calls[-1]["headers"]
    assert fake.calls[-1]["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(("primary", "backup"), [("openai", "anthropic"), ("anthropic", "openai")])
def test_fallback_crosses_vendors_and_bills_the_backup(
    gw: Gateway,
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: tuple[FakeAnthropic, str],
    primary: str,
    backup: str,
) -> None:
    base = fake_openai[1] if primary == "openai" else fake_anthropic[1]
    kind = "OpenAI" if primary == "openai" else "Anthropic"
    gw.add_model(f"{primary}-down", kind, base_url=base, api_key="sk-v", upstream_model="error-503")
    assert (
        gw.admin(
            "PUT", f"/admin/models/{primary}-down/fallbacks", json={"fallbacks": [f"{backup}-text"]}
        ).status_code
        == 200
    )
    user = f"fb-{primary}"
    raw = _openai(gw, gw.create_user(user)).chat.completions.with_raw_response.create(
        model=f"{primary}-down", messages=[{"role": "user", "content": QUESTION}]
    )
    completion = raw.parse()
    assert raw.headers["x-lowart-model"] == f"{backup}-text"
    assert completion.choices[0].message.content == f"Hello from fake: {QUESTION}"
    assert completion.usage is not None
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id=?", (user,)) == [
        (completion.usage.total_tokens,)
    ]
    rows = gw.sql(
        "SELECT served_model, status, prompt_tokens + completion_tokens "
        "FROM usage_records WHERE request_id=? ORDER BY id",
        (raw.headers["x-request-id"],),
    )
    assert rows[-1] == (f"{backup}-text", "ok", completion.usage.total_tokens)
    assert {r[1] for r in rows[:-1]} == {"error"} and all(r[2] == 0 for r in rows[:-1])


def test_count_tokens_is_admitted(make_gateway: Callable[..., Gateway]) -> None:
    """count_tokens counts against RPM, with a body cap of its own (docs/api.md, "Errors")."""
    cap = 4096
    gw = make_gateway(count_tokens_max_body_bytes=cap)
    client = _anthropic(gw, gw.create_user(rpm_limit=3))
    messages: Any = [{"role": "user", "content": QUESTION}]
    raw = client.messages.with_raw_response.count_tokens(model="mock", messages=messages)
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    client.messages.create(model="mock", max_tokens=5, messages=messages)  # the same window
    client.messages.count_tokens(model="mock", messages=messages)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.count_tokens(model="mock", messages=messages)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    unlimited = _anthropic(gw, gw.create_user())
    big: Any = [{"role": "user", "content": "word " * cap}]
    with pytest.raises(anthropic.APIStatusError) as too_large:
        unlimited.messages.count_tokens(model="mock", messages=big)
    assert too_large.value.status_code == 413
    assert too_large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    unlimited.messages.create(model="mock", max_tokens=5, messages=big)  # chat: MAX_BODY_BYTES
