"""The chat relay through the official openai SDK: the real server, the fake upstream."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import metric, register_fake_models, sdk

MESSAGES = [{"role": "user", "content": "hello gateway"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def gw(make_gateway, fake_openai: tuple[FakeOpenAI, str]) -> Gateway:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    register_fake_models(gateway, fake_openai[1])
    return gateway


def test_sync_completion_is_relayed(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    raw = client.chat.completions.with_raw_response.create(model="gpt-ok", messages=MESSAGES)
    completion = raw.parse()
    assert raw.headers["x-lowart-model"] == "gpt-ok"
    assert completion.choices[0].message.content == "Hello from fake: hello gateway"
    assert completion.model == "ok-2024-01-01"  # the vendor's own model field
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_stream_without_usage_option_has_no_usage(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    chunks = list(client.chat.completions.create(model="gpt-ok", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake: hello gateway"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_usage_on_last_chunk_only(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    chunks = list(
        client.chat.completions.create(
            model="gpt-ok", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == len(["Hello", "from", "fake:", "hello", "gateway"])


def test_tool_calls_relayed_intact(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    whole = client.chat.completions.create(model="gpt-tools", messages=MESSAGES, tools=TOOLS)
    with client.chat.completions.stream(
        model="gpt-tools", messages=MESSAGES, tools=TOOLS
    ) as stream:
        streamed = stream.get_final_completion()
    for completion in (whole, streamed):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
            ("call_fake_1", "get_weather", {"city": "Paris"}),
            ("call_fake_2", "get_time", {}),
        ]


def test_tool_result_round_trip(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    answer = client.chat.completions.create(
        model="gpt-tools",
        tools=TOOLS,
        messages=[
            *MESSAGES,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_fake_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_fake_1", "content": "18C"},
        ],
    )
    assert answer.choices[0].message.content == "Tool said: 18C"


def test_unknown_model_and_bad_key(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user(models=["gpt-ok"]))
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):  # exists, but not on this user's list
        client.chat.completions.create(model="gpt-tools", messages=MESSAGES)
    assert [m.id for m in client.models.list()] == ["gpt-ok"]
    with pytest.raises(openai.AuthenticationError):
        sdk(gw, "lw-not-a-key").chat.completions.create(model="gpt-ok", messages=MESSAGES)


def test_rpm_limit_gives_429_with_retry_after(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user(rpm_limit=2))
    first = client.chat.completions.with_raw_response.create(model="gpt-ok", messages=MESSAGES)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    client.chat.completions.create(model="gpt-ok", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-ok", messages=MESSAGES)
    assert err.value.code == "rate_limit_exceeded"
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 60
    assert err.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_quota_exhausted_is_not_retried_by_the_sdk(gw: Gateway) -> None:
    key = gw.create_user(token_quota=5)
    client = sdk(gw, key, retries=2)
    client.chat.completions.create(model="gpt-ok", messages=MESSAGES)  # overspends once
    gw.flush()
    refused_before = metric(
        gw,
        "http_request_duration_seconds_count",
        method="POST",
        route="/v1/chat/completions",
        status="429",
    )
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-ok", messages=MESSAGES)
    assert err.value.code == "insufficient_quota"
    assert err.value.response.headers["x-should-retry"] == "false"
    refused = metric(
        gw,
        "http_request_duration_seconds_count",
        method="POST",
        route="/v1/chat/completions",
        status="429",
    )
    assert refused - refused_before == 1  # the SDK (max_retries=2) did not try again


def test_upstream_errors_map_to_gateway_statuses(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-400", messages=MESSAGES)
    assert bad.value.message == "fake bad request" or "fake bad request" in str(bad.value)
    assert bad.value.param == "messages"
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-500", messages=MESSAGES)
    assert failed.value.status_code == 502
    assert failed.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.InternalServerError) as slow:
        client.chat.completions.create(model="gpt-slow", messages=MESSAGES)
    assert slow.value.status_code == 504
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-429", messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.code == "upstream_rate_limited"


def test_stream_pre_stream_error_keeps_status(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    with pytest.raises(openai.BadRequestError):
        list(client.chat.completions.create(model="gpt-400", messages=MESSAGES, stream=True))


def test_async_chat_runs_as_a_billed_job(gw: Gateway) -> None:
    key = gw.create_user("async-user", rpm_limit=5)
    raw = sdk(gw, key).chat.completions.with_raw_response.create(
        model="gpt-ok", messages=MESSAGES, extra_body={"async": True}
    )
    assert raw.status_code == 202
    accepted = raw.http_response.json()
    assert accepted["status"] == "async_started" and accepted["model"] == "gpt-ok"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"  # counted when submitted
    job_id = accepted["job_id"]
    with gw.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "completed")
        job = client.get(f"/v1/jobs/{job_id}").json()
        listed = client.get("/v1/jobs").json()
    assert job["result"]["choices"][0]["message"]["content"] == "Hello from fake: hello gateway"
    assert [j["job_id"] for j in listed["data"]] == [job_id]
    gw.flush()
    rows = gw.sql(
        "SELECT status, prompt_tokens + completion_tokens FROM usage_records WHERE request_id = ?",
        (job_id,),
    )
    assert rows == [("ok", job["result"]["usage"]["total_tokens"])]
    with pytest.raises(openai.BadRequestError):  # a job cannot stream
        sdk(gw, key).chat.completions.create(
            model="gpt-ok", messages=MESSAGES, stream=True, extra_body={"async": True}
        )


def test_an_async_job_is_admitted_once_rpm_at_submit_quota_at_run(gw: Gateway) -> None:
    """Each limit applies once (docs/api.md, "Jobs"): the RPM window counts the job when it is
    submitted, never again; its quota is reserved when it runs, not at submit, so a job whose
    user has no quota left is accepted and then fails with the quota error."""
    key = gw.create_user(rpm_limit=5, token_quota=5)
    client = sdk(gw, key)
    client.chat.completions.create(model="gpt-ok", messages=MESSAGES)  # overspends once
    gw.flush()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-ok", messages=MESSAGES, extra_body={"async": True}
    )
    assert raw.status_code == 202
    assert raw.headers["x-ratelimit-remaining-requests"] == "3"
    job_id = raw.http_response.json()["job_id"]
    with gw.client(key) as http:
        wait_for(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "failed")
        job = http.get(f"/v1/jobs/{job_id}").json()
        counted = http.post(
            "/v1/messages/count_tokens", json={"model": "gpt-ok", "messages": MESSAGES}
        )
    assert job["error"] == "You exceeded your token quota."
    assert counted.headers["x-ratelimit-remaining-requests"] == "2"  # the job's run counted none


def test_mid_stream_failure_ends_with_an_error_and_is_billed_partial(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="gpt-cut", messages=MESSAGES, stream=True
        ):
            seen.append(chunk)
    assert seen  # the chunks before the cut arrived
    wait_for(lambda: bool(gw.sql("SELECT 1 FROM usage_records WHERE served_model = 'gpt-cut'")))
    rows = gw.sql(
        "SELECT status, completion_tokens, estimated FROM usage_records "
        "WHERE served_model = 'gpt-cut'"
    )
    assert [(r[0], r[2]) for r in rows] == [("partial", 1)]
    assert rows[0][1] > 0


def test_exact_billing_sync_and_streamed(gw: Gateway) -> None:
    key = gw.create_user("biller")
    client = sdk(gw, key)
    expected = 0
    request_ids = []
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-ok", messages=[{"role": "user", "content": f"sync number {i}"}]
        )
        usage = raw.parse().usage
        assert usage is not None
        expected += usage.total_tokens
        request_ids.append(raw.headers["x-request-id"])
    for i in range(2):
        raw_stream = client.chat.completions.with_raw_response.create(
            model="gpt-ok",
            messages=[{"role": "user", "content": f"stream {i} words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(raw_stream.parse())
        assert chunks[-1].usage is not None
        expected += chunks[-1].usage.total_tokens
        request_ids.append(raw_stream.headers["x-request-id"])
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id='biller'") == [(expected,)]
    for request_id in request_ids:
        rows = gw.sql(
            "SELECT status, estimated FROM usage_records WHERE request_id=?", (request_id,)
        )
        assert rows == [("ok", 0)]


def test_stream_without_usage_option_is_billed_from_injected_usage(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-fixed", messages=MESSAGES, stream=True
    )
    list(raw.parse())
    gw.flush()
    rows = gw.sql(
        "SELECT prompt_tokens, completion_tokens, estimated FROM usage_records WHERE request_id=?",
        (raw.headers["x-request-id"],),
    )
    assert rows == [(10, 10, 0)]


def test_missing_usage_is_estimated_offline(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    raw = client.chat.completions.with_raw_response.create(model="gpt-nousage", messages=MESSAGES)
    assert raw.parse().usage is None
    wait_for(
        lambda: bool(
            gw.sql("SELECT 1 FROM usage_records WHERE request_id=?", (raw.headers["x-request-id"],))
        )
    )
    rows = gw.sql(
        "SELECT prompt_tokens, completion_tokens, estimated FROM usage_records WHERE request_id=?",
        (raw.headers["x-request-id"],),
    )
    prompt, completion, estimated = rows[0]
    assert estimated == 1 and prompt > 0 and completion > 0


def test_client_disconnect_mid_stream_is_billed(gw: Gateway) -> None:
    key = gw.create_user("leaver")
    body = {"model": "gpt-drip", "messages": MESSAGES, "stream": True}
    with (
        httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        first = next(response.iter_raw())
        assert first.startswith(b"data: ")

    def billed() -> bool:
        rows = gw.sql(
            "SELECT status, prompt_tokens + completion_tokens FROM usage_records "
            "WHERE request_id=?",
            (request_id,),
        )
        return bool(rows) and rows[0][0] == "cancelled" and rows[0][1] > 0

    wait_for(billed, timeout=5)
    assert gw.sql("SELECT token_used > 0 FROM users WHERE user_id='leaver'") == [(1,)]


def test_tokens_metric_rises_by_billed_amounts(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    before = {
        t: metric(gw, "gateway_tokens_total", model="gpt-ok", type=t)
        for t in ("prompt", "completion")
    }
    usage = client.chat.completions.create(model="gpt-ok", messages=MESSAGES).usage
    assert usage is not None
    after = {
        t: metric(gw, "gateway_tokens_total", model="gpt-ok", type=t)
        for t in ("prompt", "completion")
    }
    assert after["prompt"] - before["prompt"] == usage.prompt_tokens
    assert after["completion"] - before["completion"] == usage.completion_tokens


def test_unknown_model_label_is_bounded(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user())
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="made-up-" + "x" * 50, messages=MESSAGES)
    assert "made-up-" not in gw.admin("GET", "/metrics").text


def test_admin_usage_filters_and_groupings(gw: Gateway) -> None:
    client = sdk(gw, gw.create_user("grouped"))
    for model in ("gpt-ok", "gpt-ok", "gpt-fixed"):
        client.chat.completions.create(model=model, messages=MESSAGES)
    by_model = gw.admin(
        "GET", "/admin/usage", params={"user_id": "grouped", "group_by": "model"}
    ).json()["data"]
    assert {row["model"]: row["requests"] for row in by_model} == {"gpt-ok": 2, "gpt-fixed": 1}
    fixed = next(row for row in by_model if row["model"] == "gpt-fixed")
    assert fixed["total_tokens"] == 20  # the fake's usage-10-10
    by_day = gw.admin(
        "GET", "/admin/usage", params={"user_id": "grouped", "group_by": "day"}
    ).json()["data"]
    assert sum(row["requests"] for row in by_day) == 3
    future = gw.admin(
        "GET", "/admin/usage", params={"user_id": "grouped", "since": "2999-01-01T00:00:00Z"}
    )
    assert future.json()["data"][0]["requests"] == 0
    assert gw.admin("GET", "/admin/usage", params={"group_by": "week"}).status_code == 400
    assert gw.admin("GET", "/admin/usage", params={"since": "yesterday"}).status_code == 400


def test_n_choices_are_billed_whole_streamed_and_as_jobs(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """The vendor's count is billed, capped at ``n * max_tokens`` only (docs/api.md, "Quotas")."""
    gw.add_model("gpt-900", base_url=fake_openai[1], upstream_model="usage-10-900")
    key = gw.create_user("many-choices")
    client = sdk(gw, key)
    whole = client.chat.completions.create(model="gpt-900", messages=MESSAGES, n=8, max_tokens=100)
    chunks = list(
        client.chat.completions.create(
            model="gpt-900",
            messages=MESSAGES,
            n=4,
            max_completion_tokens=300,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    job_id = client.chat.completions.with_raw_response.create(
        model="gpt-900", messages=MESSAGES, n=2, max_tokens=100, extra_body={"async": True}
    ).http_response.json()["job_id"]
    with gw.client(key) as http:
        wait_for(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "completed")
    assert len(whole.choices) == 8 and chunks[-1].usage is not None
    gw.flush()
    rows = gw.sql(
        "SELECT request_id, prompt_tokens, completion_tokens FROM usage_records "
        "WHERE user_id = 'many-choices' ORDER BY id"
    )
    assert [r[1:] for r in rows] == [(10, 800), (10, 900), (10, 200)]
    assert rows[-1][0] == job_id
    total = sum(prompt + completion for _, prompt, completion in rows)
    assert gw.sql("SELECT token_used FROM users WHERE user_id='many-choices'") == [(total,)]


def test_a_fallback_outside_the_allowlist_is_skipped(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """The chain serves only models the caller may call (docs/api.md, "Chat": fallbacks)."""
    put = gw.admin(
        "PUT", "/admin/models/gpt-500/fallbacks", json={"fallbacks": ["gpt-ok", "gpt-429"]}
    )
    assert put.status_code == 200, put.text
    marker = [{"role": "user", "content": "allowlist marker"}]
    fake, earlier = fake_openai[0], len(fake_openai[0].calls)
    only_500 = sdk(gw, gw.create_user(models=["gpt-500"]))
    with pytest.raises(openai.InternalServerError) as failed:  # gpt-500's own error
        only_500.chat.completions.create(model="gpt-500", messages=marker)
    assert failed.value.status_code == 502
    skips_ok = sdk(gw, gw.create_user(models=["gpt-500", "gpt-429"]))
    with pytest.raises(openai.RateLimitError) as limited:  # the last model tried
        list(skips_ok.chat.completions.create(model="gpt-500", messages=marker, stream=True))
    assert limited.value.code == "upstream_rate_limited"
    tried = {call["model"] for call in fake.calls[earlier:]}
    assert tried == {"error-500", "error-429"}  # "ok" (gpt-ok) was never called
    allowed = sdk(gw, gw.create_user(models=["gpt-500", "gpt-ok"]))
    raw = allowed.chat.completions.with_raw_response.create(model="gpt-500", messages=marker)
    assert raw.headers["x-lowart-model"] == "gpt-ok"
