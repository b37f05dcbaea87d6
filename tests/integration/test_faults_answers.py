"""Whole answers that break after their head (F20), upstream redirects, answers over
``UPSTREAM_MAX_BODY_BYTES``, and the log lines of upstream failures, through the official SDKs.

Helpers come from ``test_faults.py``. Log lines are read with ``structlog.testing.capture_logs``
(the gateway runs in this process, on its own thread and socket).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from structlog.testing import capture_logs

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from tests.integration.chat_setup import metric
from tests.integration.test_faults import (
    CIRCUIT,
    FAST,
    MESSAGES,
    MakeGateway,
    Sdks,
    Upstream,
    add,
    failed,
    serve_upstream,
    set_fallbacks,
    settled_rows,
    token_used,
)


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


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def _estimated_error(row: tuple[str, str, int, int, int], model_id: str) -> bool:
    """An ``error`` row holding the prompt's estimate for reconciliation, and nothing else."""
    served, status, prompt, completion, estimated = row
    return (served, status, completion, estimated) == (model_id, "error", 0, 1) and prompt > 0


# -- F20: a whole answer cut after its head is not sent upstream again ---------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_f20_whole_answer_cut_after_its_head_is_not_sent_again(
    make_gateway: MakeGateway, oa: Upstream, an: Upstream, sdks: Sdks, vendor: str
) -> None:
    up = oa if vendor == "openai" else an
    gw = make_gateway(**FAST)
    add(gw, "f20-cut", up, "cut-0")  # a 200 with its Content-Length, then half the body
    add(gw, "f20-backup", up, "ok")
    set_fallbacks(gw, "f20-cut", "f20-backup")
    client = sdks.openai(gw, gw.create_user("f20", token_quota=10_000))

    with capture_logs() as logs, pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="f20-cut", messages=MESSAGES)
    assert (err.value.status_code, err.value.code) == (502, "upstream_error")
    assert "broke off after it began" in err.value.message
    assert (up.calls("cut-0"), up.calls("ok")) == (1, 0)  # no retry, no fallback
    [row] = settled_rows(gw, err.value.response.headers["x-request-id"], 1)
    assert _estimated_error(row, "f20-cut")
    assert token_used(gw, "f20") == 0  # the caller got nothing: not charged
    assert metric(gw, "gateway_tokens_total", model="f20-cut", type="prompt") == 0
    [failure] = _events(logs, "upstream_attempt_failed")
    assert (failure["log_level"], failure["reason"], failure["attempt"]) == (
        "warning",
        "upstream_answer_broken",
        1,
    )
    assert not _events(logs, "upstream_fallback")
    # The reservation was returned whole: the next request is served and charged its own usage.
    raw = client.chat.completions.with_raw_response.create(model="f20-backup", messages=MESSAGES)
    usage = raw.parse().usage
    assert usage is not None
    assert token_used(gw, "f20") == usage.total_tokens


# -- an upstream redirect is an upstream failure --------------------------------------------------


def test_upstream_3xx_is_a_502_never_relayed(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(retries=0)
    add(gw, "moved", oa, "redirect-302")
    add(gw, "moved-for-good", oa, "redirect-301")
    client = sdks.openai(gw, gw.create_user("moved"))

    with capture_logs() as logs, pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="moved", messages=MESSAGES)
    assert (err.value.status_code, err.value.code) == (502, "upstream_error")
    assert "redirect (status 302)" in err.value.message
    with pytest.raises(openai.InternalServerError) as streamed:
        client.chat.completions.create(model="moved-for-good", messages=MESSAGES, stream=True)
    assert (streamed.value.status_code, streamed.value.code) == (502, "upstream_error")
    assert (oa.calls("redirect-302"), oa.calls("redirect-301")) == (1, 1)
    assert settled_rows(gw, err.value.response.headers["x-request-id"], 1) == failed("moved", 1)
    assert token_used(gw, "moved") == 0
    [failure] = _events(logs, "upstream_attempt_failed")
    assert (failure["status"], failure["reason"]) == (302, "upstream_error")


# -- UPSTREAM_MAX_BODY_BYTES ---------------------------------------------------------------------


def test_whole_answer_over_the_cap_is_refused_by_its_length_or_by_counting(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    cap = 64 * 1024
    gw = make_gateway(**FAST, upstream_max_body_bytes=cap)
    add(gw, "huge", oa, "big-100")  # Content-Length over the cap: refused before reading
    add(gw, "huge-chunked", oa, "big-100:chunked")  # no length: counted while read
    add(gw, "fits", oa, "big-32:chunked")
    client = sdks.openai(gw, gw.create_user("big"))

    for model_id in ("huge", "huge-chunked"):
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model=model_id, messages=MESSAGES)
        assert (err.value.status_code, err.value.code) == (502, "upstream_error")
        assert f"larger than {cap} bytes" in err.value.message
        [row] = settled_rows(gw, err.value.response.headers["x-request-id"], 1)
        assert _estimated_error(row, model_id)  # a 2xx head: the vendor generated it
    assert (oa.calls("big-100"), oa.calls("big-100:chunked")) == (1, 1)
    content = client.chat.completions.create(model="fits", messages=MESSAGES)
    assert len(content.choices[0].message.content or "") > 32 * 1024
    assert token_used(gw, "big") == content.usage.total_tokens  # type: ignore[union-attr]


# -- the log of upstream failures ----------------------------------------------------------------


def test_refused_connections_circuit_and_fallbacks_are_logged_in_words(
    make_gateway: MakeGateway, oa: Upstream, sdks: Sdks
) -> None:
    gw = make_gateway(**CIRCUIT)
    client = sdks.openai(gw, gw.create_user())
    with oa.proxy("refuse") as proxy:
        refused = f"{proxy.proxy.host}:{proxy.proxy.port}"
        add(gw, "f14-alone", oa, "ok", base_url=proxy.proxy.base_url("/v1"))
        add(gw, "f14-down", oa, "ok", base_url=proxy.proxy.base_url("/v1"))
        add(gw, "f14-up", oa, "ok:up")
        set_fallbacks(gw, "f14-down", "f14-up")
        with capture_logs() as logs:
            with pytest.raises(openai.InternalServerError) as err:
                client.chat.completions.create(model="f14-alone", messages=MESSAGES)
            for _ in range(3):  # three refusals open f14-down's circuit (CIRCUIT: min 3 calls)
                client.chat.completions.create(model="f14-down", messages=MESSAGES)
    assert err.value.status_code == 502
    words = f"The upstream for 'f14-alone' failed: connection refused by {refused}."
    assert err.value.body["message"] == words  # type: ignore[index]

    failures = _events(logs, "upstream_attempt_failed")
    assert [f["model_id"] for f in failures] == ["f14-alone"] + ["f14-down"] * 3
    for failure in failures:
        assert failure["log_level"] == "warning"
        assert (failure["host"], failure["attempt"], failure["status"]) == (refused, 1, None)
        assert failure["reason"] == "upstream_error"
        assert f"connection refused by {refused}" in failure["error"]
        assert 0 <= failure["elapsed_ms"] < 5000
    fallbacks = _events(logs, "upstream_fallback")
    assert [(f["from_model"], f["to_model"]) for f in fallbacks] == [("f14-down", "f14-up")] * 3
    [opened] = [e for e in _events(logs, "circuit_state_changed") if e["model_id"] == "f14-down"]
    assert (opened["log_level"], opened["previous"], opened["state"]) == (
        "warning",
        "closed",
        "open",
    )
    assert oa.calls("ok:up") == 3
