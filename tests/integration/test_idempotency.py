"""``Idempotency-Key`` through the official SDKs on a real socket (docs/api.md): a retry gets the
first answer with no second upstream call and no second bill; a running key is 409, another body
422, a stream is never replayed, a 5xx frees the key, and each user's keys are their own."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from lowart.app import create_app
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway, gateway_settings, wait_for
from tests.integration.chat_setup import register_fake_models, sdk

REPLAYED = "idempotent-replayed"


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]
) -> Iterator[Gateway]:
    """One gateway for the module: every test has users and prompts of its own."""
    settings = gateway_settings(tmp_path_factory.mktemp("idempotency"))
    app = create_app(settings)
    gateway = Gateway(app, run_in_thread(app), settings)
    try:
        register_fake_models(gateway, fake_openai[1])
        gateway.add_model("gpt-held", "OpenAI", base_url=fake_openai[1], upstream_model="held")
        yield gateway
    finally:
        gateway.stop()


def _messages() -> list[dict[str, Any]]:
    """A prompt no other test sends, so the fake's log counts this test's calls only."""
    return [{"role": "user", "content": "idempotent " + secrets.token_hex(6)}]


def _calls(fake: FakeOpenAI, messages: list[dict[str, Any]]) -> int:
    return sum(call["body"].get("messages") == messages for call in fake.calls)


def _billing(gw: Gateway, user_id: str) -> tuple[int, int]:
    """(usage rows, token_used) of the user, once the queue is written."""
    gw.flush()
    [(rows,)] = gw.sql("SELECT count(*) FROM usage_records WHERE user_id = ?", (user_id,))
    [(used,)] = gw.sql("SELECT token_used FROM users WHERE user_id = ?", (user_id,))
    return rows, used


def _key(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retry_gets_the_first_answer_with_no_second_call_or_bill(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake = fake_openai[0]
    user_id = "idem-" + secrets.token_hex(4)
    client, other = sdk(gw, gw.create_user(user_id)), sdk(gw, gw.create_user())
    messages = _messages()

    def create(sdk_client: openai.OpenAI, key: str, **fields: Any) -> Any:
        return sdk_client.chat.completions.with_raw_response.create(
            model="gpt-ok", messages=messages, extra_headers=_key(key), **fields
        )

    first = create(client, "order-1")
    billed = _billing(gw, user_id)
    again = create(client, "order-1")

    assert again.http_response.content == first.http_response.content
    assert again.headers[REPLAYED] == "true" and REPLAYED not in first.headers
    assert again.headers["x-lowart-model"] == "gpt-ok"
    assert again.headers["content-type"] == "application/json"
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert _calls(fake, messages) == 1
    assert billed[0] == 1 and billed[1] > 0
    assert _billing(gw, user_id) == billed
    with pytest.raises(openai.UnprocessableEntityError) as mismatch:
        create(client, "order-1", temperature=0.5)  # the same key, another body
    assert mismatch.value.code == "idempotency_key_mismatch"
    create(other, "order-1")  # another user's key of the same name is their own
    assert _calls(fake, messages) == 2
    with pytest.raises(openai.BadRequestError) as bad:
        create(client, "x" * 256)
    assert "Idempotency-Key" in bad.value.message
    assert _calls(fake, messages) == 2


def test_a_client_error_is_kept_and_a_server_error_frees_the_key(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    client = sdk(gw, gw.create_user())
    messages = _messages()
    calls_per_try = []
    for model, kept in (("gpt-400", True), ("gpt-500", False)):
        replayed = []
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as raised:
                client.chat.completions.create(
                    model=model, messages=messages, extra_headers=_key("k-" + model)
                )
            replayed.append(raised.value.response.headers.get(REPLAYED))
            calls_per_try.append(_calls(fake_openai[0], messages))
        assert replayed == [None, "true" if kept else None]
    one_400, two_400, one_500, two_500 = calls_per_try
    assert one_400 == two_400 == 1  # the 400 was kept: the retry never reached the upstream
    assert two_500 - one_500 == one_500 - two_400 > 0  # the 502 freed the key: run again


def test_a_stream_is_never_replayed(gw: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    client = sdk(gw, gw.create_user())
    messages = _messages()

    def stream() -> str:
        chunks = client.chat.completions.create(
            model="gpt-ok", messages=messages, stream=True, extra_headers=_key("stream-1")
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert stream().startswith("Hello from fake: idempotent")
    with pytest.raises(openai.ConflictError) as reused:
        stream()
    assert reused.value.code == "idempotency_stream"
    assert reused.value.response.headers["x-should-retry"] == "false"
    assert _calls(fake_openai[0], messages) == 1


def test_concurrent_requests_with_one_key_run_once(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake = fake_openai[0]
    client = sdk(gw, gw.create_user())
    messages = _messages()
    results: list[Any] = []

    def create(timeout: float = 30) -> Any:
        return client.with_options(timeout=timeout).chat.completions.with_raw_response.create(
            model="gpt-held", messages=messages, extra_headers=_key("held-1")
        )

    fake.released.clear()
    try:
        first = threading.Thread(target=lambda: results.append(create()))
        first.start()
        wait_for(lambda: _calls(fake, messages) == 1)  # the first is upstream, held there
        with pytest.raises(openai.ConflictError) as running:  # not held upstream: no wait
            create(timeout=10)
        assert running.value.code == "idempotency_in_progress"
        assert running.value.response.headers["x-should-retry"] == "true"
    finally:
        fake.released.set()
    first.join(timeout=10)
    replay = create()
    assert replay.http_response.content == results[0].http_response.content
    assert replay.headers[REPLAYED] == "true"
    assert _calls(fake, messages) == 1


def test_messages_replay_and_refuse_in_anthropic_shape(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    client = gw.anthropic(gw.create_user())
    text = "idempotent " + secrets.token_hex(6)

    def create(content: str) -> Any:
        return client.messages.with_raw_response.create(
            model="gpt-ok",
            max_tokens=50,
            messages=[{"role": "user", "content": content}],
            extra_headers=_key("msg-1"),
        )

    first, again = create(text), create(text)
    assert again.http_response.content == first.http_response.content
    assert again.headers[REPLAYED] == "true"
    with pytest.raises(anthropic.UnprocessableEntityError) as mismatch:
        create(text + " more")
    assert mismatch.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model="gpt-ok",
            max_tokens=50,
            messages=[{"role": "user", "content": text}],
            extra_headers=_key("caf\u00e9"),
        )
    assert sum(text in str(c["body"]["messages"]) for c in fake_openai[0].calls) == 1


def test_an_async_job_is_submitted_once(gw: Gateway) -> None:
    user_id = "jobs-" + secrets.token_hex(4)
    key = gw.create_user(user_id)
    body = {"model": "gpt-ok", "messages": _messages(), "async": True}

    def submit() -> httpx.Response:
        with gw.client(key) as client:
            return client.post("/v1/chat/completions", json=body, headers=_key("job-1"))

    first, again = submit(), submit()
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert gw.sql("SELECT count(*) FROM jobs WHERE user_id = ?", (user_id,)) == [(1,)]
