"""``POST /v1/responses`` through the official SDK on a real socket, for every vendor kind that
does chat: OpenAI-compatible in both wires (translated to chat, and relayed to the fake's own
Responses API), Anthropic and Mock (docs/api.md, "Responses"). Stored responses, history
across a restart and a fallback, isolation between users, and background jobs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import VENDOR_KEY

ROWS = (
    "SELECT prompt_tokens, completion_tokens, served_model, status FROM usage_records "
    "WHERE request_id=?"
)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# Each vendor kind that does chat, by the model registered for it below.
KINDS = ("chat-wire", "responses-wire", "claude", "mock")


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[str]:
    with run_in_thread(FakeAnthropic()) as server:
        yield server.base_url


@pytest.fixture
def gw(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: str,
) -> Gateway:
    gateway = make_gateway(job_poll_s=0.05)
    base = fake_openai[1]
    add = gateway.add_model
    add("chat-wire", "OpenAI", base_url=base, api_key=VENDOR_KEY, upstream_model="ok")
    add(
        "responses-wire",
        "OpenAI",
        base_url=base,
        api_key=VENDOR_KEY,
        upstream_model="ok",
        params={"wire": "responses"},
    )
    add("claude", "Anthropic", base_url=fake_anthropic, api_key=VENDOR_KEY)
    # "mock", the Mock model every gateway starts with, is the fourth kind.
    for wire in ("chat", "responses"):
        for name, upstream in (
            ("tools", "tools"),
            ("broken", "error-500"),
            ("slow", "slow-3000"),
            ("cut", "cut-3"),
        ):
            add(
                f"{name}-{wire}",
                "OpenAI",
                base_url=base,
                api_key=VENDOR_KEY,
                upstream_model=upstream,
                params={"wire": wire},
            )
    add(
        "tools-claude",
        "Anthropic",
        base_url=fake_anthropic,
        api_key=VENDOR_KEY,
        upstream_model="tools",
    )
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    add("tools-mock", "Mock", params={"tool_call": call})
    return gateway


def _billed(gw: Gateway, request_id: str) -> tuple[int, int]:
    wait_for(lambda: bool(gw.sql(ROWS + " AND status='ok'", (request_id,))))
    prompt, completion, _, _ = gw.sql(ROWS + " AND status='ok'", (request_id,))[0]
    return prompt, completion


def _chat_text(client: openai.OpenAI, model: str, text: str) -> str:
    """What the same vendor answers the same words through chat completions."""
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return answer.choices[0].message.content or ""


@pytest.mark.parametrize("model", KINDS)
def test_create_and_stream_for_every_vendor_kind(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str], model: str
) -> None:
    client = gw.openai(gw.create_user())
    expected = _chat_text(client, model, "hello there")
    raw = client.responses.with_raw_response.create(model=model, input="hello there")
    response = raw.parse()
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == expected
    assert response.model == model
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == _billed(gw, raw.headers["x-request-id"])
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    if model == "responses-wire":  # relayed natively: no history and nothing stored upstream
        sent = fake_openai[0].responses_calls[-1]["body"]
        assert sent["store"] is False and "previous_response_id" not in sent
    with client.responses.stream(
        model=model,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hello there"}]}],
        instructions="Be brief.",
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == expected and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == expected  # stored before done


@pytest.mark.parametrize("kind", ["chat", "responses", "claude", "mock"])
def test_function_tools_round_trip_and_json_schema(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str], kind: str
) -> None:
    client = gw.openai(gw.create_user())
    with client.responses.stream(
        model=f"tools-{kind}", input="weather in Paris?", tools=[WEATHER_TOOL]
    ) as stream:
        first = stream.get_final_response()
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=f"tools-{kind}",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "Tool said: sunny"
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    client.responses.create(
        model="chat-wire",
        input="json please",
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema}},
    )
    sent = fake_openai[0].calls[-1]["body"]
    assert sent["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize("wire", ["chat", "responses"])
def test_a_stream_cut_upstream_ends_in_an_error_the_sdk_raises(gw: Gateway, wire: str) -> None:
    client = gw.openai(gw.create_user())
    with (
        pytest.raises(openai.APIError, match="cut off"),
        client.responses.stream(model=f"cut-{wire}", input="one two three four five") as stream,
    ):
        stream.get_final_response()
    wait_for(lambda: bool(gw.sql("SELECT 1 FROM usage_records WHERE status='partial'")))
    assert gw.sql("SELECT COUNT(*) FROM responses") == [(0,)]  # nothing stored as complete


def test_history_survives_a_restart_and_a_fallback_vendor(
    make_gateway: Callable[..., Gateway], gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw.admin("PUT", "/admin/models/broken-chat/fallbacks", json={"fallbacks": ["claude"]})
    key = gw.create_user("historian")
    first = gw.openai(key).responses.create(model="broken-chat", input="remember the word kiwi")
    assert first.model == "broken-chat"
    served = "SELECT served_model FROM usage_records WHERE status='ok'"
    wait_for(lambda: ("claude",) in gw.sql(served))
    gw.stop()
    again = make_gateway(job_poll_s=0.05)  # the same database file, a new process state
    second = again.openai(key).responses.create(
        model="responses-wire", previous_response_id=first.id, input="which word?"
    )
    sent = fake_openai[0].responses_calls[-1]["body"]
    texts = json.dumps(sent["input"])
    assert "remember the word kiwi" in texts and first.output_text in texts
    assert "previous_response_id" not in sent
    third = again.openai(key).responses.create(
        model="chat-wire", previous_response_id=second.id, input="and now?"
    )
    messages = fake_openai[0].calls[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    items = again.openai(key).responses.input_items.list(third.id)
    assert [item.type for item in items.data] == ["message"]


def test_store_false_keeps_nothing_and_others_get_404(gw: Gateway) -> None:
    alice, bob = gw.openai(gw.create_user("alice")), gw.openai(gw.create_user("bob"))
    kept = alice.responses.create(model="mock", input="one")
    unkept = alice.responses.create(model="mock", input="two", store=False)
    assert gw.sql("SELECT id FROM responses") == [(kept.id,)]
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(unkept.id)
    for call in (
        lambda: bob.responses.retrieve(kept.id),
        lambda: bob.responses.input_items.list(kept.id),
        lambda: bob.responses.delete(kept.id),
        lambda: bob.responses.create(model="mock", input="x", previous_response_id=kept.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    alice.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(kept.id)


def test_background_runs_polls_and_cancels(gw: Gateway) -> None:
    client = gw.openai(gw.create_user())
    queued = client.responses.create(model="chat-wire", input="later", background=True)
    assert queued.status == "queued" and queued.background
    wait_for(lambda: client.responses.retrieve(queued.id).status == "completed", timeout=10)
    done = client.responses.retrieve(queued.id)
    assert done.output_text == "Hello from fake: later" and done.id == queued.id
    assert client.responses.cancel(queued.id).status == "completed"  # too late: as it is
    slow = client.responses.create(model="slow-chat", input="never", background=True)
    wait_for(lambda: client.responses.retrieve(slow.id).status == "in_progress", timeout=10)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="mock", input="x", background=True, store=False)
    assert refused.value.body["param"] == "background"  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"truncation": "auto"}, "truncation"),
        ({"tools": [{"type": "mcp", "server_label": "x", "server_url": "https://x"}]}, "tools"),
        ({"input": 5}, "input"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"previous_response_id": "resp_missing"}, "previous_response_id"),
    ],
)
def test_bad_input_is_4xx_in_openai_shape(gw: Gateway, extra: dict[str, Any], param: str) -> None:
    body = {"model": "mock", "input": "hi", **extra}
    key = gw.create_user()
    response = httpx.post(
        gw.v1 + "/responses", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["param"].startswith(param) and error["message"]


def test_the_read_routes_refuse_bad_input_in_openai_shape(gw: Gateway) -> None:
    key = gw.create_user()
    kept = gw.openai(key).responses.create(model="mock", input="one")
    with gw.client(key) as http:
        items = f"/v1/responses/{kept.id}/input_items"
        for query, param in (
            ("limit=0", "limit"),
            ("order=sideways", "order"),
            ("after=x", "after"),
        ):
            refused = http.get(f"{items}?{query}")
            assert refused.status_code == 400 and refused.json()["error"]["param"] == param
        page = http.get(f"{items}?order=asc&limit=1").json()
        assert page["has_more"] is False and page["first_id"] == page["last_id"]
        for method, path in (
            ("POST", f"/v1/responses/{kept.id}/cancel"),  # not a background response
            ("GET", "/v1/responses/resp_nothing"),
            ("GET", "/v1/responses/../admin"),
            ("DELETE", "/v1/responses/resp_nothing"),
        ):
            missing = http.request(method, path)
            assert missing.status_code == 404, (method, path, missing.text)
            assert missing.json()["error"]["type"] == "invalid_request_error"
