"""Stream fault tests F6-F9, F11 and F18 of docs/reliability.md, through the official SDKs.

After its first byte a stream never falls back: an upstream failure ends it with an explicit error
in the caller's format, and it is billed ``partial``. Every stream here is checked to end with its
terminator or an explicit error, never silently. Helpers come from ``test_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.types import Receive, Scope, Send

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread
from tests.conftest import Gateway, wait_for
from tests.integration.test_faults import (
    FAST,
    MESSAGES,
    VENDOR_KEY,
    MakeGateway,
    Sdks,
    Upstream,
    add,
    anthropic_stream_end,
    openai_stream_end,
    serve_upstream,
    set_fallbacks,
    settled_rows,
    sse_events,
    token_used,
)

WORDS = " ".join(f"w{i}" for i in range(40))
LONG: Any = [{"role": "user", "content": WORDS}]  # a 43-word answer: 45 chunks


@pytest.fixture
def oa() -> Iterator[Upstream]:
    yield from serve_upstream(FakeOpenAI())


@pytest.fixture
def an() -> Iterator[Upstream]:
    yield from serve_upstream(FakeAnthropic())


@pytest.fixture
def sdks() -> Iterator[Sdks]:
    clients = Sdks()
    yield clients
    clients.close()


def _content(chunks: list[Any]) -> list[str]:
    """The non-empty content deltas of OpenAI chunks."""
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


# -- F6: the upstream breaks after the first byte ------------------------------------------------

CUT_AFTER = 2500  # response bytes through the proxy: the head and about ten chunks


@pytest.mark.parametrize(
    ("mode", "error_code"),
    [
        (f"limit_data:{CUT_AFTER}", "upstream_error"),
        (f"reset_after:{CUT_AFTER}", "upstream_error"),
        (f"stall_after:{CUT_AFTER}", "upstream_timeout"),
    ],
)
def test_f6_midstream_disconnect_reset_or_stall_ends_with_an_error_no_fallback(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks, mode: str, error_code: str
) -> None:
    gw = make_gateway(**FAST)
    with oa.proxy(mode) as proxy:
        add(
            gw,
            "f6-flaky",
            oa,
            "chunkdelay-5",
            base_url=proxy.proxy.base_url("/v1"),
            params={"timeouts": {"idle": 0.3}},
        )
        add(gw, "f6-backup", oa, "ok")
        set_fallbacks(gw, "f6-flaky", "f6-backup")
        client = sdks.openai(gw, gw.create_user())

        raw = client.chat.completions.with_raw_response.create(
            model="f6-flaky", messages=LONG, stream=True, max_tokens=200
        )
        assert (raw.status_code, raw.headers["x-lowart-model"]) == (200, "f6-flaky")
        chunks: list[Any] = []
        with pytest.raises(openai.APIError) as err:
            chunks.extend(raw.parse())
    delivered = _content(chunks)
    assert 2 <= len(delivered) < 43  # several chunks passed, then the break
    assert ("Hello from fake: " + WORDS).startswith("".join(delivered))  # in order, none lost
    assert err.value.body["code"] == error_code  # type: ignore[index]
    assert openai_stream_end(sdks.last_body()) == "error"
    assert (oa.calls("chunkdelay-5"), oa.calls("ok")) == (1, 0)  # no retry, no fallback
    [(served, status, prompt, completion, estimated)] = settled_rows(
        gw, raw.headers["x-request-id"], 1
    )
    assert (served, status, estimated) == ("f6-flaky", "partial", 1)
    assert prompt > 0
    assert len(delivered) <= completion <= 200


def test_f6_midstream_close_seen_by_a_raw_client(make_gateway: MakeGateway, oa: Upstream) -> None:
    gw = make_gateway(**FAST)
    with oa.proxy(f"limit_data:{CUT_AFTER}") as proxy:
        add(gw, "f6-raw", oa, "chunkdelay-5", base_url=proxy.proxy.base_url("/v1"))
        key = gw.create_user()
        body = {"model": "f6-raw", "messages": LONG, "stream": True}
        with (
            httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            raw = response.read()
    datas = [data for _, data in sse_events(raw)]
    assert len(datas) > 3
    last = json.loads(datas[-1])
    assert last["error"]["type"] == "upstream_error"
    assert all("choices" in json.loads(data) for data in datas[:-1])
    assert "[DONE]" not in datas


def test_f6_midstream_cut_ends_an_anthropic_callers_stream_with_an_error_event(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    with oa.proxy(f"limit_data:{CUT_AFTER}") as proxy:
        add(gw, "f6-gpt", oa, "chunkdelay-5", base_url=proxy.proxy.base_url("/v1"))
        add(gw, "f6-gpt-backup", oa, "ok")
        set_fallbacks(gw, "f6-gpt", "f6-gpt-backup")
        client = sdks.anthropic(gw, gw.create_user())
        raw = client.messages.with_raw_response.create(
            model="f6-gpt", max_tokens=200, messages=LONG, stream=True
        )
        texts: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as err:
            for event in raw.parse():
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    texts.append(event.delta.text)
    assert raw.status_code == 200
    assert len(texts) >= 2
    assert ("Hello from fake: " + WORDS).startswith("".join(texts))
    assert err.value.body["type"] == "error"  # type: ignore[index]
    assert err.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert anthropic_stream_end(sdks.last_body()) == "error"
    assert (oa.calls("chunkdelay-5"), oa.calls("ok")) == (1, 0)
    [row] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert row[:2] == ("f6-gpt", "partial") and row[3] >= len(texts)


# -- F7: an upstream error event mid-stream ------------------------------------------------------


def _f7_gateway(make_gateway: MakeGateway, oa: Upstream, an: Upstream) -> Gateway:
    gw = make_gateway(**FAST)
    add(gw, "f7-claude", an, "midstream_error-2")
    add(gw, "f7-backup", oa, "ok")
    set_fallbacks(gw, "f7-claude", "f7-backup")
    return gw


def test_f7_midstream_error_event_relayed_to_anthropic_callers(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = _f7_gateway(make_gateway, oa, an)
    client = sdks.anthropic(gw, gw.create_user())
    raw = client.messages.with_raw_response.create(
        model="f7-claude", max_tokens=100, messages=MESSAGES, stream=True
    )
    assert raw.status_code == 200
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        for event in raw.parse():
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                texts.append(event.delta.text)
    assert texts == ["Hello ", "from "]
    assert err.value.status_code == 200  # the status already sent is not changed
    assert err.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert anthropic_stream_end(sdks.last_body()) == "error"
    assert (an.calls("midstream_error-2"), oa.calls("ok")) == (1, 0)
    [row] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert row[:2] == ("f7-claude", "partial")


def test_f7_midstream_error_event_mapped_for_openai_callers(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = _f7_gateway(make_gateway, oa, an)
    client = sdks.openai(gw, gw.create_user())
    raw = client.chat.completions.with_raw_response.create(
        model="f7-claude", messages=MESSAGES, stream=True
    )
    assert raw.status_code == 200
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as err:
        chunks.extend(raw.parse())
    assert _content(chunks) == ["Hello ", "from "]
    assert err.value.message == "Overloaded"
    assert openai_stream_end(sdks.last_body()) == "error"
    assert (an.calls("midstream_error-2"), oa.calls("ok")) == (1, 0)
    [row] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert row[:2] == ("f7-claude", "partial")


def test_f7_partial_anthropic_stream_billed_at_least_what_was_delivered(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = _f7_gateway(make_gateway, oa, an)
    client = sdks.anthropic(gw, gw.create_user())
    raw = client.messages.with_raw_response.create(
        model="f7-claude", max_tokens=100, messages=MESSAGES, stream=True
    )
    with pytest.raises(anthropic.APIStatusError):
        list(raw.parse())
    [(_, status, _, completion, _)] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert status == "partial"
    assert completion >= 2  # "Hello ", "from " were delivered


# -- F8: malformed SSE on a translated stream ----------------------------------------------------

_START = {
    "type": "message_start",
    "message": {
        "id": "msg_malformed",
        "type": "message",
        "role": "assistant",
        "model": "malformed",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
}
_BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class MalformedAnthropic:
    """A raw ASGI Anthropic upstream whose stream carries a ``content_block_delta`` that is not
    JSON: after a valid start (upstream model ``after-start``) or as its first event."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        model = json.loads(body)["model"]
        self.calls.append(model)
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if model == "after-start":
            head = _event("message_start", _START) + _event("content_block_start", _BLOCK)
            await send({"type": "http.response.body", "body": head, "more_body": True})
            await asyncio.sleep(0.05)  # the start reaches the client first
        bad = b"event: content_block_delta\ndata: {not json\n\n"
        await send({"type": "http.response.body", "body": bad, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture
def malformed() -> Iterator[tuple[MalformedAnthropic, ThreadedServer]]:
    app = MalformedAnthropic()
    with run_in_thread(app) as server:
        yield app, server


def test_f8_malformed_sse_on_a_translated_stream_ends_with_one_error(
    make_gateway: MakeGateway,
    oa: Upstream,
    malformed: tuple[MalformedAnthropic, ThreadedServer],
    sdks: Sdks,
) -> None:
    app, server = malformed
    gw = make_gateway(**FAST)
    for model_id, upstream in (("f8-late", "after-start"), ("f8-early", "first")):
        gw.add_model(
            model_id,
            "Anthropic",
            base_url=server.base_url,
            api_key=VENDOR_KEY,
            upstream_model=upstream,
        )
    add(gw, "f8-backup", oa, "ok")
    set_fallbacks(gw, "f8-late", "f8-backup")
    client = sdks.openai(gw, gw.create_user(), timeout=10)

    # After the first byte: the chunks so far, then one explicit error; no fallback.
    raw = client.chat.completions.with_raw_response.create(
        model="f8-late", messages=MESSAGES, stream=True
    )
    assert raw.status_code == 200
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as err:
        chunks.extend(raw.parse())
    assert [c.choices[0].delta.role for c in chunks] == ["assistant"]
    assert "malformed" in err.value.message
    assert openai_stream_end(sdks.last_body()) == "error"
    errors = [d for _, d in sse_events(sdks.last_body()) if "error" in json.loads(d)]
    assert len(errors) == 1
    assert (app.calls.count("after-start"), oa.calls("ok")) == (1, 0)
    [row] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert row[:2] == ("f8-late", "partial")

    # Before the first byte: an upstream failure like any other (retried), never a 500.
    with pytest.raises(openai.InternalServerError) as early:
        client.chat.completions.create(model="f8-early", messages=MESSAGES, stream=True)
    assert early.value.status_code == 502
    assert early.value.code == "upstream_error"
    assert app.calls.count("first") == 3


def test_f8_same_format_relay_of_sliced_bytes_arrives_intact(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    with oa.proxy("slice:3") as proxy:
        add(gw, "f8-sliced", oa, "ok", base_url=proxy.proxy.base_url("/v1"))
        add(gw, "f8-whole", oa, "ok")
        client = sdks.openai(gw, gw.create_user())
        runs = []
        for model in ("f8-sliced", "f8-whole"):
            stream = client.chat.completions.create(
                model=model, messages=LONG, stream=True, stream_options={"include_usage": True}
            )
            runs.append([chunk.model_dump(exclude={"id"}) for chunk in stream])
            assert openai_stream_end(sdks.last_body()) == "done"
    sliced, whole = runs
    assert sliced == whole
    assert len(whole) == 2 + 43 + 1  # role, one chunk per word, finish, usage
    assert whole[-1]["usage"]["completion_tokens"] == 43


# -- F9: a slow-drip upstream --------------------------------------------------------------------


def test_f9_slow_drip_stream_ended_by_the_total_deadline(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f9-drip", oa, "chunkdelay-400", timeout_s=1.5, params={"timeouts": {"idle": 1.0}})
    client = sdks.openai(gw, gw.create_user())
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="f9-drip", messages=LONG, stream=True
    )
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as err:  # every gap (0.4 s) is under the idle timeout
        chunks.extend(raw.parse())
    elapsed = time.monotonic() - started
    assert err.value.body["code"] == "upstream_timeout"  # type: ignore[index]
    assert 2 <= len(chunks) < 45
    assert elapsed < 1.5 + 1.0
    assert openai_stream_end(sdks.last_body()) == "error"
    assert oa.calls("chunkdelay-400") == 1
    [row] = settled_rows(gw, raw.headers["x-request-id"], 1)
    assert row[:2] == ("f9-drip", "partial")
    wait_for(lambda: oa.app.disconnects == 1)  # the upstream stream was let go


# -- F11: an upstream error before the stream starts ---------------------------------------------


def test_f11_pre_stream_upstream_error_keeps_its_status(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f11-gpt", oa, "error-400")
    add(gw, "f11-claude", an, "error-400")
    key = gw.create_user()
    chat, messages = sdks.openai(gw, key), sdks.anthropic(gw, key)

    for model in ("f11-gpt", "f11-claude"):
        with pytest.raises(openai.BadRequestError) as err:
            chat.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        assert err.value.status_code == 400
        assert err.value.body["message"] == "fake bad request"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError) as bad:
            messages.messages.create(model=model, max_tokens=20, messages=MESSAGES, stream=True)
        assert bad.value.status_code == 400
        assert bad.value.body == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "fake bad request"},
        }
    body = {"model": "f11-gpt", "messages": MESSAGES, "stream": True}
    response = httpx.post(
        gw.v1 + "/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["message"] == "fake bad request"
    assert (oa.calls("error-400"), an.calls("error-400")) == (3, 2)  # one attempt each


# -- F18: the client leaves ----------------------------------------------------------------------


def _stream_rows(gw: Gateway, user_id: str) -> list[tuple[str, int, int]]:
    return gw.sql(
        "SELECT status, prompt_tokens, completion_tokens FROM usage_records WHERE user_id=?",
        (user_id,),
    )


def test_f18_client_disconnect_after_chunks_is_billed_and_cancels_upstream(
    make_gateway: MakeGateway, oa: Upstream
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f18-drip", oa, "chunkdelay-50")
    key = gw.create_user("f18a")
    body = {"model": "f18-drip", "messages": LONG, "stream": True}
    with (
        httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():  # up to the first word, then leave
            if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get(
                "content"
            ):
                break

    wait_for(lambda: [r[0] for r in _stream_rows(gw, "f18a")] == ["cancelled"])
    [(_, prompt, completion)] = _stream_rows(gw, "f18a")
    assert prompt > 0 and completion >= 1
    wait_for(lambda: oa.app.disconnects == 1)  # the upstream call was cancelled
    assert oa.calls("chunkdelay-50") == 1
    assert token_used(gw, "f18a") == prompt + completion


def test_f18_client_disconnect_before_first_byte_releases_the_reservation(
    make_gateway: MakeGateway, oa: Upstream
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f18-slow", oa, "slow-1000:chunkdelay-50")
    add(gw, "f18-ok", oa, "ok")
    key = gw.create_user("f18b", token_quota=100)
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "f18-slow", "messages": MESSAGES, "stream": True, "max_tokens": 1000}
    with (
        httpx.Client(base_url=gw.url, headers=headers, timeout=0.3) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post("/v1/chat/completions", json=body)
    small = {"model": "f18-ok", "messages": MESSAGES, "max_tokens": 10}
    # while the abandoned request holds the whole quota, nothing else fits
    held = httpx.post(gw.v1 + "/chat/completions", json=small, headers=headers)
    assert held.status_code == 429
    assert held.json()["error"]["code"] == "insufficient_quota"

    wait_for(lambda: [r[0] for r in _stream_rows(gw, "f18b")] == ["cancelled"])
    after = httpx.post(gw.v1 + "/chat/completions", json=small, headers=headers)
    assert after.status_code == 200, after.text
    assert after.headers["x-lowart-model"] == "f18-ok"
    assert oa.calls("slow-1000:chunkdelay-50") == 1


def test_f18_client_gone_during_retries_still_leaves_a_row_per_attempt(
    make_gateway: MakeGateway, oa: Upstream
) -> None:
    gw = make_gateway(retries=1, retry_backoff_ms=400)
    add(gw, "f18-failing", oa, "error-500")
    add(gw, "f18-backup", oa, "chunkdelay-50")
    set_fallbacks(gw, "f18-failing", "f18-backup")
    key = gw.create_user("f18c")
    body = {"model": "f18-failing", "messages": LONG, "stream": True}
    with (
        httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post("/v1/chat/completions", json=body, timeout=0.1)  # gone during the backoff

    wait_for(lambda: len(_stream_rows(gw, "f18c")) == 3)
    statuses = [status for status, _, _ in _stream_rows(gw, "f18c")]
    assert statuses == ["error", "error", "cancelled"]
    assert (oa.calls("error-500"), oa.calls("chunkdelay-50")) == (2, 1)
    wait_for(lambda: oa.app.disconnects == 1)
