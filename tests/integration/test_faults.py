"""Fault tests F1-F5, F10 and F19 of docs/reliability.md, through the official SDKs.

Every test starts its own gateway with short durations and its own fake upstreams, so the attempt
counts read from the fakes' request logs are exact. Stream faults (F6-F9, F11, F18) are in
``test_faults_streams.py``, which reuses the helpers defined here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.fault_proxy import FaultProxy, ProxyThread
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import metric

MESSAGES: Any = [{"role": "user", "content": "hello faults"}]
ANSWER = "Hello from fake: hello faults"
VENDOR_KEY = "sk-fault-vendor-key"
FAST = {"retries": 2, "retry_backoff_ms": 1}  # RETRIES=2: three attempts per model

MakeGateway = Callable[..., Gateway]


# -- fake upstreams ------------------------------------------------------------------------------


@dataclass
class Upstream:
    """A fake upstream served for one test; ``calls`` counts the requests per upstream model."""

    app: FakeOpenAI | FakeAnthropic
    server: ThreadedServer

    @property
    def vendor(self) -> str:
        return "OpenAI" if isinstance(self.app, FakeOpenAI) else "Anthropic"

    @property
    def base_url(self) -> str:
        """What a model's ``base_url`` takes: OpenAI's includes ``/v1``, Anthropic's does not."""
        return self.server.base_url + ("/v1" if self.vendor == "OpenAI" else "")

    def calls(self, upstream_model: str) -> int:
        return sum(1 for call in self.app.calls if call["model"] == upstream_model)

    def proxy(self, mode: str) -> ProxyThread:
        """A fault proxy in front of this upstream, in ``mode`` from its first connection."""
        return FaultProxy.in_thread(self.server.host, self.server.port, mode)


def serve_upstream(app: FakeOpenAI | FakeAnthropic) -> Iterator[Upstream]:
    with run_in_thread(app) as server:
        yield Upstream(app, server)


@pytest.fixture
def oa() -> Iterator[Upstream]:
    """A fresh fake OpenAI upstream."""
    yield from serve_upstream(FakeOpenAI())


@pytest.fixture
def an() -> Iterator[Upstream]:
    """A fresh fake Anthropic upstream."""
    yield from serve_upstream(FakeAnthropic())


def add(
    gw: Gateway,
    model_id: str,
    up: Upstream,
    upstream_model: str,
    base_url: str | None = None,
    **fields: Any,
) -> None:
    """Register a model on a fake upstream (or on a proxy in front of it)."""
    gw.add_model(
        model_id,
        up.vendor,
        base_url=base_url or up.base_url,
        api_key=VENDOR_KEY,
        upstream_model=upstream_model,
        **fields,
    )


def set_fallbacks(gw: Gateway, model_id: str, *fallbacks: str) -> None:
    response = gw.admin("PUT", f"/admin/models/{model_id}/fallbacks", json={"fallbacks": fallbacks})
    assert response.status_code == 200, response.text


# -- SDK clients that keep what they read --------------------------------------------------------


def _tee(bodies: list[list[bytes]]) -> httpx2.HTTPTransport:
    """An httpx2 transport (what both SDKs use) keeping a copy of every response body it reads."""

    class TeeStream(httpx2.SyncByteStream):
        def __init__(self, inner: httpx2.SyncByteStream, sink: list[bytes]) -> None:
            self._inner = inner
            self._sink = sink

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                self._sink.append(chunk)
                yield chunk

        def close(self) -> None:
            self._inner.close()

    class Tee(httpx2.HTTPTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            response = super().handle_request(request)
            sink: list[bytes] = []
            bodies.append(sink)
            assert isinstance(response.stream, httpx2.SyncByteStream)
            response.stream = TeeStream(response.stream, sink)
            return response

    return Tee()


@dataclass
class Sdks:
    """Official SDK clients (``max_retries=0``) whose response bodies stay readable afterwards."""

    bodies: list[list[bytes]] = field(default_factory=list)
    _http: list[httpx2.Client] = field(default_factory=list)

    def _client(self, timeout: float) -> httpx2.Client:
        http = httpx2.Client(transport=_tee(self.bodies), timeout=timeout)
        self._http.append(http)
        return http

    def openai(self, gw: Gateway, key: str, timeout: float = 30) -> openai.OpenAI:
        http = self._client(timeout)
        return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0, http_client=http)

    def anthropic(self, gw: Gateway, key: str, timeout: float = 30) -> anthropic.Anthropic:
        http = self._client(timeout)
        return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, http_client=http)

    def last_body(self) -> bytes:
        """The body of the last response, as far as it was read."""
        return b"".join(self.bodies[-1])

    def close(self) -> None:
        for client in self._http:
            client.close()


@pytest.fixture
def sdks() -> Iterator[Sdks]:
    clients = Sdks()
    yield clients
    clients.close()


# -- streams: every one ends with its terminator or an explicit error ----------------------------


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """``(event name, data)`` of each SSE event that has data (comments are skipped)."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def openai_stream_end(raw: bytes) -> str:
    """How an OpenAI-format stream ended: ``"done"`` or ``"error"``; fails on a silent end."""
    datas = [data for _, data in sse_events(raw)]
    assert datas, raw
    if datas[-1] == "[DONE]":
        assert "[DONE]" not in datas[:-1]
        return "done"
    last = json.loads(datas[-1])
    assert isinstance(last.get("error"), dict), f"stream ended silently after {datas[-1]!r}"
    assert "[DONE]" not in datas
    return "error"


def anthropic_stream_end(raw: bytes) -> str:
    """How an Anthropic-format stream ended: ``"done"`` or ``"error"``; fails on a silent end."""
    events = sse_events(raw)
    assert events, raw
    name, data = events[-1]
    if name == "message_stop":
        return "done"
    assert name == "error", f"stream ended silently after {name!r}"
    assert json.loads(data)["type"] == "error"
    return "error"


# -- usage rows ----------------------------------------------------------------------------------

Row = tuple[str, str, int, int, int]  # served model, status, prompt, completion, estimated


def usage_rows(gw: Gateway, request_id: str) -> list[Row]:
    rows = gw.sql(
        "SELECT served_model, status, prompt_tokens, completion_tokens, estimated "
        "FROM usage_records WHERE request_id=? ORDER BY id",
        (request_id,),
    )
    return [tuple(row) for row in rows]


def settled_rows(gw: Gateway, request_id: str, count: int) -> list[Row]:
    """The request's usage rows once ``count`` of them are written (streams bill afterwards)."""
    wait_for(lambda: len(usage_rows(gw, request_id)) >= count)
    gw.flush()
    return usage_rows(gw, request_id)


def token_used(gw: Gateway, user_id: str) -> int:
    gw.flush()
    return int(gw.sql("SELECT token_used FROM users WHERE user_id=?", (user_id,))[0][0])


def failed(model_id: str, times: int) -> list[Row]:
    """The rows of ``times`` failed attempts: billed nothing."""
    return [(model_id, "error", 0, 0, 0)] * times


# -- F1: upstream 5xx ----------------------------------------------------------------------------


def test_f1_upstream_5xx_retried_then_fallback(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f1-primary", oa, "error-500")
    add(gw, "f1-backup", oa, "usage-7-9")
    set_fallbacks(gw, "f1-primary", "f1-backup")
    client = sdks.openai(gw, gw.create_user("f1"))

    raw = client.chat.completions.with_raw_response.create(model="f1-primary", messages=MESSAGES)
    assert raw.status_code == 200
    assert raw.headers["x-lowart-model"] == "f1-backup"
    assert raw.parse().choices[0].message.content == ANSWER
    assert oa.calls("error-500") == 1 + 2  # 1 + RETRIES on the primary
    assert oa.calls("usage-7-9") == 1
    assert metric(gw, "gateway_retries_total", model="f1-primary") == 2
    assert metric(gw, "gateway_retries_total", model="f1-backup") == 0
    fallbacks = metric(gw, "gateway_fallbacks_total", from_model="f1-primary", to_model="f1-backup")
    assert fallbacks == 1
    rows = settled_rows(gw, raw.headers["x-request-id"], 4)
    assert rows == [*failed("f1-primary", 3), ("f1-backup", "ok", 7, 9, 0)]  # billed once
    assert token_used(gw, "f1") == 7 + 9
    assert metric(gw, "gateway_requests_total", model="f1-primary", status="ok") == 1
    assert metric(gw, "gateway_requests_total", model="f1-primary", status="error") == 3
    # Metrics and the usage report answer both questions alike: asked for, and served by.
    asked, served = {"model": "f1-primary"}, {"served_model": "f1-backup"}
    assert metric(gw, "gateway_requests_total", **asked, **served, status="ok") == 1
    assert metric(gw, "gateway_requests_total", served_model="f1-primary", status="error") == 3
    assert metric(gw, "gateway_tokens_total", **asked, **served, type="prompt") == 7
    assert metric(gw, "gateway_tokens_total", **asked, **served, type="completion") == 9
    assert metric(gw, "gateway_tokens_total", served_model="f1-primary") == 0

    def report(group_by: str, **query: str) -> list[tuple[object, ...]]:
        params = {"user_id": "f1", "group_by": group_by, **query}
        response = gw.admin("GET", "/admin/usage", params=params)
        assert response.status_code == 200, response.text
        return [(r[group_by], r["total_tokens"], r["requests"]) for r in response.json()["data"]]

    assert report("model") == [("f1-primary", 16, 4)]
    assert report("served_model") == [("f1-backup", 16, 1), ("f1-primary", 0, 3)]
    assert report("model", served_model="f1-backup") == [("f1-primary", 16, 1)]
    bad = gw.admin("GET", "/admin/usage", params={"group_by": "vendor"})
    assert bad.status_code == 400 and "served_model" in bad.json()["error"]["message"]


def test_f1_stream_falls_back_across_vendors_before_first_byte(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f1s-primary", oa, "error-503")
    add(gw, "f1s-claude", an, "usage-4-6")
    set_fallbacks(gw, "f1s-primary", "f1s-claude")
    client = sdks.openai(gw, gw.create_user("f1s"))

    raw = client.chat.completions.with_raw_response.create(
        model="f1s-primary",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    assert raw.status_code == 200
    assert raw.headers["x-lowart-model"] == "f1s-claude"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert openai_stream_end(sdks.last_body()) == "done"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 10
    assert (oa.calls("error-503"), an.calls("usage-4-6")) == (3, 1)
    rows = settled_rows(gw, raw.headers["x-request-id"], 4)
    assert rows == [*failed("f1s-primary", 3), ("f1s-claude", "ok", 4, 6, 0)]
    assert token_used(gw, "f1s") == 10


def test_f1_anthropic_529_falls_back_for_anthropic_callers(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f1a-claude", an, "error-529")
    add(gw, "f1a-gpt", oa, "usage-5-8")
    set_fallbacks(gw, "f1a-claude", "f1a-gpt")
    client = sdks.anthropic(gw, gw.create_user("f1a"))

    raw = client.messages.with_raw_response.create(
        model="f1a-claude", max_tokens=50, messages=MESSAGES, stream=True
    )
    events = list(raw.parse())
    assert raw.headers["x-lowart-model"] == "f1a-gpt"
    text = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert "".join(text) == ANSWER
    assert anthropic_stream_end(sdks.last_body()) == "done"
    assert (an.calls("error-529"), oa.calls("usage-5-8")) == (3, 1)
    rows = settled_rows(gw, raw.headers["x-request-id"], 4)
    assert rows == [*failed("f1a-claude", 3), ("f1a-gpt", "ok", 5, 8, 0)]
    assert token_used(gw, "f1a") == 13


def test_f1_max_attempts_caps_the_chain(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(retries=0, max_attempts=2)
    add(gw, "cap-a", oa, "error-500")
    add(gw, "cap-b", oa, "error-429")
    add(gw, "cap-c", oa, "ok")
    set_fallbacks(gw, "cap-a", "cap-b", "cap-c")
    client = sdks.openai(gw, gw.create_user())

    with pytest.raises(openai.RateLimitError) as err:  # the status of the last failure (b)
        client.chat.completions.create(model="cap-a", messages=MESSAGES)
    assert err.value.code == "upstream_rate_limited"
    assert (oa.calls("error-500"), oa.calls("error-429"), oa.calls("ok")) == (1, 1, 0)
    assert metric(gw, "gateway_fallbacks_total", from_model="cap-a", to_model="cap-b") == 1
    assert metric(gw, "gateway_fallbacks_total", from_model="cap-b", to_model="cap-c") == 0
    rows = settled_rows(gw, err.value.response.headers["x-request-id"], 2)
    assert rows == [*failed("cap-a", 1), *failed("cap-b", 1)]


def test_f1_every_model_failing_gives_502_after_backoff(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(retries=1, retry_backoff_ms=200)
    add(gw, "all-a", oa, "error-500")
    add(gw, "all-b", oa, "error-502")
    set_fallbacks(gw, "all-a", "all-b")
    client = sdks.openai(gw, gw.create_user("all"))

    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="all-a", messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert err.value.status_code == 502
    assert err.value.code == "upstream_error"
    assert err.value.response.headers["x-should-retry"] == "false"
    assert (oa.calls("error-500"), oa.calls("error-502")) == (2, 2)
    # one retry per model, each after a backoff of base x [0.5, 1]: at least 2 x 0.1 s
    assert elapsed >= 0.2
    rows = settled_rows(gw, err.value.response.headers["x-request-id"], 4)
    assert rows == [*failed("all-a", 2), *failed("all-b", 2)]
    assert token_used(gw, "all") == 0


# -- F2: upstream 429 with Retry-After -----------------------------------------------------------


def test_f2_upstream_429_falls_back_at_once_or_relays_retry_after(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST, retry_after_max_s=0)
    add(gw, "f2-limited", oa, "error-429")
    add(gw, "f2-backup", oa, "ok")
    add(gw, "f2-alone", oa, "error-429:alone")
    set_fallbacks(gw, "f2-limited", "f2-backup")
    client = sdks.openai(gw, gw.create_user())

    raw = client.chat.completions.with_raw_response.create(model="f2-limited", messages=MESSAGES)
    assert raw.headers["x-lowart-model"] == "f2-backup"
    assert (oa.calls("error-429"), oa.calls("ok")) == (1, 1)  # Retry-After 7 s: never sooner
    assert metric(gw, "gateway_retries_total", model="f2-limited") == 0

    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="f2-alone", messages=MESSAGES)
    assert err.value.status_code == 429
    assert err.value.code == "upstream_rate_limited"
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.response.headers["x-should-retry"] == "false"
    assert oa.calls("error-429:alone") == 1


def test_f2_retry_after_beyond_the_request_deadline_fails_fast(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    # The policy would wait out Retry-After (up to 10 s), but 7 s do not fit in the 2 s deadline.
    gw = make_gateway(**FAST, retry_after_max_s=10, request_timeout_s=2)
    add(gw, "f2-patient", oa, "error-429")
    client = sdks.openai(gw, gw.create_user())
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="f2-patient", messages=MESSAGES)
    assert time.monotonic() - started < 1.5
    assert err.value.response.headers["retry-after"] == "7"
    assert oa.calls("error-429") == 1


# -- F3: client-caused 4xx -----------------------------------------------------------------------


def test_f3_client_4xx_relayed_once_without_fallback(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f3-400", oa, "error-400")
    add(gw, "f3-422", oa, "error-422")
    add(gw, "f3-backup", oa, "ok")
    set_fallbacks(gw, "f3-400", "f3-backup")
    set_fallbacks(gw, "f3-422", "f3-backup")
    client = sdks.openai(gw, gw.create_user())

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="f3-400", messages=MESSAGES)
    assert bad.value.status_code == 400
    assert bad.value.body == {
        "message": "fake bad request",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "invalid_value",
    }
    with pytest.raises(openai.UnprocessableEntityError) as unprocessable:
        client.chat.completions.create(model="f3-422", messages=MESSAGES)
    assert unprocessable.value.status_code == 422
    assert (oa.calls("error-400"), oa.calls("error-422"), oa.calls("ok")) == (1, 1, 0)
    assert metric(gw, "gateway_retries_total", model="f3-400") == 0
    assert metric(gw, "gateway_fallbacks_total", from_model="f3-400", to_model="f3-backup") == 0
    rows = settled_rows(gw, bad.value.response.headers["x-request-id"], 1)
    assert rows == failed("f3-400", 1)


def test_f3_client_4xx_never_opens_the_circuit(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST, circuit_min_calls=5, circuit_failure_ratio=0.5, circuit_cooldown_s=60)
    add(gw, "f3-shared", oa, "error-400")
    add(gw, "f3-control", oa, "error-500")
    noisy = sdks.openai(gw, gw.create_user("noisy"))
    for _ in range(20):
        with pytest.raises(openai.BadRequestError):
            noisy.chat.completions.create(model="f3-shared", messages=MESSAGES)
    assert oa.calls("error-400") == 20  # each one reached the upstream once

    # The model's upstream recovers; another tenant is served at once: the circuit stayed closed.
    patched = gw.admin("PATCH", "/admin/models/f3-shared", json={"upstream_model": "ok"})
    assert patched.status_code == 200, patched.text
    other = sdks.openai(gw, gw.create_user("other"))
    raw = other.chat.completions.with_raw_response.create(model="f3-shared", messages=MESSAGES)
    assert raw.headers["x-lowart-model"] == "f3-shared"
    assert oa.calls("ok") == 1

    # Control: with the same settings, upstream 5xx do open a circuit (5 calls, all failed).
    for _ in range(2):  # 3 attempts each
        with pytest.raises(openai.InternalServerError):
            noisy.chat.completions.create(model="f3-control", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError) as opened:
        noisy.chat.completions.create(model="f3-control", messages=MESSAGES)
    assert opened.value.status_code == 503
    assert oa.calls("error-500") == 6


def test_f3_upstream_401_is_the_gateways_problem_not_the_callers(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f3-badkey", oa, "error-401")
    add(gw, "f3-badkey-2", oa, "error-401:two")
    add(gw, "f3-goodkey", oa, "ok")
    set_fallbacks(gw, "f3-badkey-2", "f3-goodkey")
    client = sdks.openai(gw, gw.create_user())

    # Not relayed as a 401: the caller's key is fine, the gateway's vendor key was refused.
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="f3-badkey", messages=MESSAGES)
    assert err.value.status_code == 502
    assert err.value.code == "upstream_error"
    assert err.value.response.headers["x-should-retry"] == "false"
    assert VENDOR_KEY not in err.value.response.text
    # Another model (other credentials) may still serve.
    raw = client.chat.completions.with_raw_response.create(model="f3-badkey-2", messages=MESSAGES)
    assert raw.headers["x-lowart-model"] == "f3-goodkey"


def test_f3_upstream_401_not_retried_on_the_same_model(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST)
    add(gw, "f3-refused", oa, "error-401")
    client = sdks.openai(gw, gw.create_user())
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="f3-refused", messages=MESSAGES)
    assert oa.calls("error-401") == 1


# -- F4: timeouts --------------------------------------------------------------------------------


def test_f4_first_byte_timeout_retried_within_the_deadline(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST, request_timeout_s=2)
    add(gw, "f4-slow", oa, "slow-1000", params={"timeouts": {"first_byte": 0.3}})
    client = sdks.openai(gw, gw.create_user())

    for stream in (False, True):
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="f4-slow", messages=MESSAGES, stream=stream)
        elapsed = time.monotonic() - started
        assert err.value.status_code == 504
        assert err.value.code == "upstream_timeout"
        assert err.value.response.headers["x-should-retry"] == "false"
        assert elapsed < 2  # three tries of 0.3 s fit in the 2 s deadline
    assert oa.calls("slow-1000") == 2 * 3  # 1 + RETRIES attempts per request


def test_f4_request_deadline_shorter_than_the_model_timeout(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST, request_timeout_s=0.5)
    add(gw, "f4-patient", oa, "slow-1500", timeout_s=10, params={"timeouts": {"first_byte": 5}})
    client = sdks.openai(gw, gw.create_user())

    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="f4-patient", messages=MESSAGES)
    assert err.value.status_code == 504
    assert time.monotonic() - started < 0.5 + 0.5
    assert oa.calls("slow-1500") == 1  # no time left for a retry


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_f4_whole_answer_stalled_after_its_head_ends_at_the_total_timeout(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks, vendor: str
) -> None:
    """The head arrives within the first-byte timeout, then the body stops: the total timeout
    (not the first-byte one, which has passed) ends the attempt. A 2xx head was in, so the
    vendor may have generated the answer: it is neither retried nor handed to a fallback (F20)."""
    up = oa if vendor == "openai" else an
    gw = make_gateway(**FAST, request_timeout_s=5)
    # The proxy passes the response head (under 200 bytes here) and stalls within the body.
    with up.proxy("stall_after:200") as proxy:
        base_url = proxy.proxy.base_url("/v1" if vendor == "openai" else "")
        add(gw, "f4-stalled", up, "ok", base_url=base_url, timeout_s=0.4)
        add(gw, "f4-backup", up, "ok:backup")
        set_fallbacks(gw, "f4-stalled", "f4-backup")
        client = sdks.openai(gw, gw.create_user("f4"))

        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="f4-stalled", messages=MESSAGES)
        elapsed = time.monotonic() - started
    assert (err.value.status_code, err.value.code) == (502, "upstream_error")
    assert "stalled after it began" in err.value.message
    assert (up.calls("ok"), up.calls("ok:backup")) == (1, 0)
    assert 0.4 <= elapsed < 0.4 + 1
    [row] = settled_rows(gw, err.value.response.headers["x-request-id"], 1)
    assert row[:2] == ("f4-stalled", "error") and row[2] > 0 and row[3:] == (0, 1)
    assert token_used(gw, "f4") == 0


# -- F5: connection refused or reset before the first byte ---------------------------------------


@pytest.mark.parametrize("mode", ["refuse", "reset_after:0"])
def test_f5_connection_refused_or_reset_falls_back(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks, mode: str
) -> None:
    gw = make_gateway(**FAST)
    with oa.proxy(mode) as proxy:
        add(gw, "f5-broken", oa, "usage-1-1", base_url=proxy.proxy.base_url("/v1"))
        add(gw, "f5-healthy", oa, "usage-2-3")
        set_fallbacks(gw, "f5-broken", "f5-healthy")
        client = sdks.openai(gw, gw.create_user())

        raw = client.chat.completions.with_raw_response.create(model="f5-broken", messages=MESSAGES)
        assert (raw.status_code, raw.headers["x-lowart-model"]) == (200, "f5-healthy")
        stream = client.chat.completions.with_raw_response.create(
            model="f5-broken", messages=MESSAGES, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
        assert (stream.status_code, stream.headers["x-lowart-model"]) == (200, "f5-healthy")
        assert text == ANSWER
        assert openai_stream_end(sdks.last_body()) == "done"

    reached = 0 if mode == "refuse" else 3  # a refused connection never reaches the upstream
    assert oa.calls("usage-1-1") == 2 * reached
    assert oa.calls("usage-2-3") == 2
    assert metric(gw, "gateway_retries_total", model="f5-broken") == 2 * 2  # retryable
    rows = settled_rows(gw, raw.headers["x-request-id"], 4)
    assert rows == [*failed("f5-broken", 3), ("f5-healthy", "ok", 2, 3, 0)]
    assert metric(gw, "gateway_requests_total", model="f5-broken", status="ok") == 2


# -- F10: wrong or absurd upstream usage ---------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_f10_absurd_usage_is_clamped_capped_or_estimated(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks, stream: bool
) -> None:
    gw = make_gateway(**FAST)
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("f10-negative", "usage-m5-10", {}),
        ("f10-zero", "usage-10-0", {}),
        ("f10-huge", "usage-10-99999999", {"max_tokens": 50}),
        ("f10-missing", "nousage", {}),
    ]
    client = sdks.openai(gw, gw.create_user("f10"))
    billed: dict[str, Row] = {}
    for model_id, upstream, extra in cases:
        add(gw, model_id, oa, upstream)
        raw = client.chat.completions.with_raw_response.create(
            model=model_id, messages=MESSAGES, stream=stream, **extra
        )
        if stream:
            list(raw.parse())
            assert openai_stream_end(sdks.last_body()) == "done"
        [billed[model_id]] = settled_rows(gw, raw.headers["x-request-id"], 1)

    assert billed["f10-negative"] == ("f10-negative", "ok", 0, 10, 0)  # negative clamped to 0
    assert billed["f10-zero"] == ("f10-zero", "ok", 10, 0, 0)  # an explicit 0 stays 0
    assert billed["f10-huge"] == ("f10-huge", "ok", 10, 50, 0)  # capped at max_tokens
    _, status, prompt, completion, estimated = billed["f10-missing"]
    assert (status, estimated) == ("ok", 1) and prompt > 0 and completion > 0
    assert token_used(gw, "f10") == sum(row[2] + row[3] for row in billed.values())


# -- F19: the circuit breaker's lifecycle --------------------------------------------------------

CIRCUIT = {
    "retries": 0,
    "circuit_min_calls": 3,
    "circuit_failure_ratio": 0.5,
    "circuit_cooldown_s": 0.5,
    "circuit_window_s": 30,
}


def _served_by(client: openai.OpenAI, model: str) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    return raw.headers["x-lowart-model"], raw.headers["x-request-id"]


def test_f19_open_circuit_is_skipped_then_a_probe_closes_it(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**CIRCUIT)
    add(gw, "f19-primary", oa, "error-500")
    add(gw, "f19-backup", oa, "ok")
    set_fallbacks(gw, "f19-primary", "f19-backup")
    client = sdks.openai(gw, gw.create_user())

    for _ in range(3):  # three failures: the primary's circuit opens
        assert _served_by(client, "f19-primary")[0] == "f19-backup"
    assert oa.calls("error-500") == 3
    served, request_id = _served_by(client, "f19-primary")
    assert served == "f19-backup"
    assert oa.calls("error-500") == 3  # skipped entirely
    # the trip is not an upstream failure: no error row for the skipped model
    assert settled_rows(gw, request_id, 1) == [("f19-backup", "ok", 2, 5, 0)]

    patched = gw.admin("PATCH", "/admin/models/f19-primary", json={"upstream_model": "ok:healed"})
    assert patched.status_code == 200
    # after the cooldown a half-open probe reaches the healed upstream and closes the circuit
    wait_for(lambda: _served_by(client, "f19-primary")[0] == "f19-primary", timeout=5)
    assert oa.calls("ok:healed") == 1
    assert _served_by(client, "f19-primary")[0] == "f19-primary"  # closed again
    assert oa.calls("ok:healed") == 2


def test_f19_every_model_open_gives_503_then_a_probe_goes_through(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**CIRCUIT)
    add(gw, "f19-lonely", oa, "error-500")
    key = gw.create_user()
    client = sdks.openai(gw, key)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError) as failed_once:
            client.chat.completions.create(model="f19-lonely", messages=MESSAGES)
        assert failed_once.value.status_code == 502

    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="f19-lonely", messages=MESSAGES)
    assert err.value.status_code == 503
    assert err.value.code == "upstream_unavailable"
    assert err.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        sdks.anthropic(gw, key).messages.create(
            model="f19-lonely", max_tokens=20, messages=MESSAGES
        )
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert oa.calls("error-500") == 3
    assert usage_rows(gw, err.value.response.headers["x-request-id"]) == []  # nothing attempted

    def probed() -> bool:
        with contextlib.suppress(openai.InternalServerError):  # 503 while open, 502 probed
            client.chat.completions.create(model="f19-lonely", messages=MESSAGES)
        return oa.calls("error-500") == 4

    wait_for(probed, timeout=5, interval=0.05)
    # the probe failed: open again, at once
    with pytest.raises(openai.InternalServerError) as reopened:
        client.chat.completions.create(model="f19-lonely", messages=MESSAGES)
    assert reopened.value.status_code == 503
    assert oa.calls("error-500") == 4


# -- fallback rows written by hand ---------------------------------------------------------------


def test_hand_inserted_fallback_rows_apply_within_5s_in_priority_then_insertion_order(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**FAST, max_attempts=10)  # room for 3 + 3 + 1 attempts
    add(gw, "hand-primary", oa, "error-500")
    add(gw, "hand-first", oa, "error-503")
    add(gw, "hand-tie-1", oa, "usage-1-2")
    add(gw, "hand-tie-2", oa, "usage-3-4")
    rows = [
        ("hand-primary", "hand-tie-1", 5),
        ("hand-primary", "hand-primary", 0),  # itself: skipped
        ("hand-primary", "hand-ghost", 0),  # unknown: skipped
        ("hand-primary", "hand-tie-2", 5),
        ("hand-primary", "hand-first", 1),
    ]
    for primary, fallback, priority in rows:
        gw.sql(
            "INSERT INTO model_fallbacks(primary_model_id, fallback_model_id, priority) "
            "VALUES (?, ?, ?)",
            (primary, fallback, priority),
        )
    client = sdks.openai(gw, gw.create_user())

    def served() -> bool:
        try:
            return _served_by(client, "hand-primary")[0] == "hand-tie-1"
        except openai.InternalServerError:  # 502 until the rows are read
            return False

    wait_for(served, timeout=5, interval=0.1)
    served_by, request_id = _served_by(client, "hand-primary")
    assert served_by == "hand-tie-1"  # the tie kept insertion order
    assert settled_rows(gw, request_id, 7) == [
        *failed("hand-primary", 3),
        *failed("hand-first", 3),
        ("hand-tie-1", "ok", 1, 2, 0),
    ]
    assert oa.calls("usage-3-4") == 0
