"""Traces (docs/operations.md, "Tracing"): spans reach a local OTLP/HTTP receiver as the real
protobuf payloads; a caller's ``traceparent`` is continued and sent upstream; a dead collector
costs the requests nothing but a counter."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.otlp_receiver import OTLPReceiver, ReceivedSpan
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import metric, register_fake_models, sdk
from tests.integration.test_tools import chat, new_user, set_policy, setup_tools

SERVER, CLIENT, INTERNAL = 2, 3, 1
FAST_EXPORT = {"otel_bsp_schedule_delay": 20, "otel_exporter_otlp_timeout": 300, "retries": 0}


@pytest.fixture
def receiver() -> Iterator[tuple[OTLPReceiver, str]]:
    app = OTLPReceiver()
    with run_in_thread(app) as server:
        yield app, server.base_url


def _trace(receiver: OTLPReceiver, trace_id: str, count: int) -> list[ReceivedSpan]:
    wait_for(lambda: len([s for s in receiver.spans if s.trace_id == trace_id]) >= count)
    return [s for s in receiver.spans if s.trace_id == trace_id]


def test_a_fallback_is_one_trace_continued_from_the_caller_and_sent_upstream(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    receiver: tuple[OTLPReceiver, str],
) -> None:
    collector, url = receiver
    gw = make_gateway(otel_exporter_otlp_endpoint=url, otel_service_name="lw-test", **FAST_EXPORT)
    fake, base_url = fake_openai
    register_fake_models(gw, base_url)
    put = gw.admin("PUT", "/admin/models/gpt-500/fallbacks", json={"fallbacks": ["gpt-ok"]})
    assert put.status_code == 200, put.text
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    client = sdk(gw, gw.create_user(user_id="tracer"))
    answer = client.chat.completions.with_raw_response.create(
        model="gpt-500",
        messages=[{"role": "user", "content": "trace me"}],
        extra_headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert answer.headers["x-lowart-model"] == "gpt-ok"
    spans = _trace(collector, trace_id, 3)
    (request,) = [s for s in spans if s.kind == SERVER]
    assert request.parent_span_id == caller_span  # the caller's trace, continued
    assert request.name == "chat gpt-500" and request.service_name == "lw-test"
    assert request.attributes["gen_ai.request.model"] == "gpt-500"
    assert request.attributes["lowart.model"] == "gpt-ok"
    assert request.attributes["lowart.user_id"] == "tracer"
    attempts = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.name)
    assert [s.parent_span_id for s in attempts] == [request.span_id] * 2
    failed, served = attempts  # "chat error-500", "chat ok"
    for span in attempts:
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["server.address"] == "127.0.0.1"
    assert failed.attributes["gen_ai.request.model"] == "error-500"
    assert failed.attributes["error.type"] and failed.status_code == 2
    assert failed.attributes["lowart.fallback"] is False
    assert served.attributes["lowart.fallback"] is True
    assert served.attributes["lowart.model"] == "gpt-ok"
    assert served.attributes["lowart.deployment"] == "default"
    assert served.attributes["gen_ai.response.model"] == "ok"
    usage = answer.parse().usage
    assert usage is not None
    assert served.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert served.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert served.attributes["lowart.billed_tokens"] == usage.total_tokens
    assert "error.type" not in served.attributes
    # Each upstream try carried its own attempt's context.
    sent = {c["model"]: c["headers"]["traceparent"] for c in fake.calls if trace_id in str(c)}
    assert sent == {
        "error-500": f"00-{trace_id}-{failed.span_id}-01",
        "ok": f"00-{trace_id}-{served.span_id}-01",
    }


def test_streams_and_jobs_have_their_own_spans(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    receiver: tuple[OTLPReceiver, str],
) -> None:
    collector, url = receiver
    gw = make_gateway(otel_exporter_otlp_endpoint=url, job_poll_s=0.05, **FAST_EXPORT)
    register_fake_models(gw, fake_openai[1])
    key = gw.create_user()
    stream = sdk(gw, key).chat.completions.create(
        model="gpt-ok", messages=[{"role": "user", "content": "s"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    wait_for(lambda: any(s.kind == CLIENT for s in collector.spans))
    (attempt,) = [s for s in collector.spans if s.kind == CLIENT]
    (request,) = [s for s in collector.spans if s.span_id == attempt.parent_span_id]
    assert request.parent_span_id == "" and request.name == "chat gpt-ok"  # a new trace
    assert attempt.attributes["lowart.ttfb_ms"] > 0
    assert attempt.attributes["lowart.status"] == "ok"
    with gw.client(key) as client:
        submitted = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-ok", "messages": [{"role": "user", "content": "j"}], "async": True},
        )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    wait_for(lambda: any(s.name == "job chat" for s in collector.spans))
    (job,) = [s for s in collector.spans if s.name == "job chat"]
    assert job.attributes["lowart.job_id"] == job_id and job.kind == INTERNAL
    job_attempts = _trace(collector, job.trace_id, 2)
    assert [s.parent_span_id for s in job_attempts if s.kind == CLIENT] == [job.span_id]
    submit = [s for s in collector.spans if s.attributes.get("lowart.job_id") == job_id]
    assert {s.kind for s in submit} == {SERVER, INTERNAL}  # the submit names its job


def test_a_dead_collector_costs_only_a_counter(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    gw = make_gateway(otel_exporter_otlp_endpoint=dead, **FAST_EXPORT)
    register_fake_models(gw, fake_openai[1])
    client = sdk(gw, gw.create_user())
    for _ in range(3):
        answer = client.chat.completions.create(
            model="gpt-ok", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.choices[0].message.content
    wait_for(lambda: metric(gw, "gateway_trace_export_failures_total") >= 1)
    assert metric(gw, "gateway_requests_total", status="ok") == 3
    answer = client.chat.completions.create(
        model="gpt-ok", messages=[{"role": "user", "content": "y"}]
    )
    assert answer.choices[0].message.content


def test_each_tool_call_is_a_child_of_its_request(
    make_gateway: Callable[..., Gateway], receiver: tuple[OTLPReceiver, str]
) -> None:
    collector, url = receiver
    gw = make_gateway(otel_exporter_otlp_endpoint=url, mcp_call_timeout_s=10, **FAST_EXPORT)
    setup_tools(gw)
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    answer = chat(gw, key)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: any(s.name == "execute_tool get_weather" for s in collector.spans))
    (tool,) = [s for s in collector.spans if s.name == "execute_tool get_weather"]
    spans = _trace(collector, tool.trace_id, 4)  # the request, two model rounds, the tool
    (request,) = [s for s in spans if s.kind == SERVER]
    assert tool.parent_span_id == request.span_id and tool.kind == INTERNAL
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool.attributes["lowart.mcp_server"] == "weather"
    rounds = [s for s in spans if s.kind == CLIENT]
    assert len(rounds) == 2 and {s.parent_span_id for s in rounds} == {request.span_id}
    assert rounds[0].attributes["gen_ai.provider.name"] == "mock"


def test_the_flush_at_shutdown_is_bounded(make_gateway: Callable[..., Gateway]) -> None:
    """A collector that takes the connection and never answers holds the exit no longer than
    ``TRACE_SHUTDOWN_FLUSH_S`` (the export itself would wait 30 s)."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()  # connections complete in the backlog; nothing ever reads them
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        gw = make_gateway(
            otel_exporter_otlp_endpoint=url,
            otel_exporter_otlp_timeout=30_000,
            otel_bsp_schedule_delay=60_000,  # the spans wait for the shutdown flush
            trace_shutdown_flush_s=0.3,
        )
        key = gw.create_user()
        gw.add_model("mock-a", "Mock")
        answer = sdk(gw, key).chat.completions.create(
            model="mock-a", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.choices[0].message.content
        started = time.monotonic()
        gw.stop()
        assert time.monotonic() - started < 3
