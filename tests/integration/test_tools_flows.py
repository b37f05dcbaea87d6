"""Gateway-run tools, the flows that need their own settings or gateways: expiry, a restart
between the pause and the confirm, async jobs, streaming, a tool server dying mid-call and the
round limit. Helpers and models are those of ``test_tools.py``.

Streaming, as tested (documented behaviour): with ``stream: true`` the tool rounds run whole and
the outcome is then told as SSE. A final answer streams as usual; a pause is an OpenAI stream
whose finish chunk (``finish_reason`` ``tool_calls``) carries ``status``, ``session_id``,
``expires_at`` and ``tool_calls``, then ``data: [DONE]``; for ``/v1/messages`` the pause fields
are in ``message_start``'s message. The confirm itself answers JSON, not a stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, wait_for
from tests.integration.test_tools import (
    MESSAGES,
    MODELS,
    PARIS,
    audit,
    chat,
    confirm,
    mcp,
    new_user,
    pause,
    register,
    server_status,
    sessions,
    set_policy,
    setup_tools,
    start_gateway,
    text_of,
)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(
        tmp_path_factory.mktemp("tool-flows"), mcp_call_timeout_s=10, job_poll_s=0.05
    )
    try:
        setup_tools(gateway)
        yield gateway
    finally:
        gateway.stop()


def job(gw: Gateway, key: str, job_id: str) -> dict[str, Any]:
    with gw.client(key) as client:
        response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def submit(gw: Gateway, key: str, model: str = "weather-bot") -> str:
    response = chat(gw, key, model, **{"async": True})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def wait_job(
    gw: Gateway, key: str, job_id: str, status: str, timeout: float = 10
) -> dict[str, Any]:
    wait_for(lambda: job(gw, key, job_id)["status"] == status, timeout=timeout, interval=0.05)
    return job(gw, key, job_id)


# -- expiry, restart ------------------------------------------------------------------------------


def test_an_expired_session_is_gone(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(tool_session_ttl_s=0.5)
    setup_tools(gw)
    user_id, key = new_user(gw)
    paused = chat(gw, key).json()
    assert paused["status"] == "require_confirmation"
    assert paused["expires_at"] <= time.time() + 0.5 + 1  # shown rounded up to a second

    wait_for(lambda: sessions(gw, key) == [], timeout=5)
    response = confirm(gw, key, paused["session_id"], [paused["tool_calls"][0]["id"]])

    assert response.status_code == 410, response.text
    assert confirm(gw, key, paused["session_id"], []).status_code == 410
    assert audit(gw, user_id) == []  # timeout means deny: nothing ran
    [(status,)] = gw.sql(
        "SELECT status FROM tool_sessions WHERE session_id = ?", (paused["session_id"],)
    )
    assert status == "expired"


def test_a_restart_between_pause_and_confirm_loses_nothing(
    make_gateway: Callable[..., Gateway],
) -> None:
    first = make_gateway()
    setup_tools(first)
    user_id, key = new_user(first)
    paused = chat(first, key, "deleter").json()
    assert paused["status"] == "require_confirmation"
    first.stop()

    second = make_gateway()  # the same database; nothing registered again
    wait_for(lambda: server_status(second, "weather") == "running", timeout=15)
    assert [s["session_id"] for s in sessions(second, key)] == [paused["session_id"]]

    done = confirm(second, key, paused["session_id"], [paused["tool_calls"][0]["id"]])

    assert done.status_code == 200, done.text
    assert text_of(done.json()) == "Tool said: Deleted /srv/important.txt (pretend)"
    [row] = audit(second, user_id)
    assert (row["tool"], row["approver"], row["outcome"]) == ("delete_file", user_id, "ok")
    assert confirm(second, key, paused["session_id"], []).status_code == 409


def test_a_confirm_retried_with_its_idempotency_key_gets_the_first_answer(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    paused = pause(gw, key)
    body = {"session_id": paused["session_id"], "approved_ids": [paused["tool_calls"][0]["id"]]}

    def post(idempotency_key: str) -> httpx.Response:
        with gw.client(key) as client:
            headers = {"Idempotency-Key": idempotency_key}
            return client.post("/v1/tools/confirm", json=body, headers=headers)

    done, again = post("confirm-1"), post("confirm-1")

    assert done.status_code == again.status_code == 200, again.text
    assert again.content == done.content and again.headers["idempotent-replayed"] == "true"
    assert text_of(again.json()) == f"Tool said: {PARIS}"
    assert [row["outcome"] for row in audit(gw, user_id)] == ["ok"]  # the tool ran once
    assert post("confirm-2").status_code == 409  # a new key: the session is used up


# -- async jobs -----------------------------------------------------------------------------------


def test_an_async_job_waits_for_the_confirmation_then_completes(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    job_id = submit(gw, key)

    waiting = wait_job(gw, key, job_id, "require_confirmation")

    session_id = waiting["session_id"]
    assert isinstance(session_id, str) and session_id
    assert waiting["result"] is None
    [listed] = sessions(gw, key)
    assert (listed["session_id"], listed["job_id"]) == (session_id, job_id)
    done = confirm(gw, key, session_id, [listed["tool_calls"][0]["id"]])
    assert done.status_code == 200, done.text
    finished = job(gw, key, job_id)
    assert finished["status"] == "completed"
    assert "session_id" not in finished
    assert finished["result"]["object"] == "chat.completion"
    assert text_of(finished["result"]) == f"Tool said: {PARIS}"
    assert finished["result"] == done.json()
    [row] = audit(gw, user_id)
    assert (row["approver"], row["outcome"]) == (user_id, "ok")


def test_an_async_job_with_an_auto_tool_completes_alone(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    job_id = submit(gw, key)
    finished = wait_job(gw, key, job_id, "completed")
    assert text_of(finished["result"]) == f"Tool said: {PARIS}"
    gw.flush()
    assert gw.sql("SELECT status FROM usage_records WHERE request_id = ?", (job_id,)) == [
        ("ok",),
        ("ok",),
    ]


def test_an_async_job_whose_session_expires_fails(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(tool_session_ttl_s=0.5, job_heartbeat_s=0.1, job_poll_s=0.05, job_lease_s=5)
    setup_tools(gw)
    user_id, key = new_user(gw)
    job_id = submit(gw, key)

    failed = wait_job(gw, key, job_id, "failed")

    assert "expired" in (failed["error"] or "")
    assert failed["result"] is None
    [(session_id,)] = gw.sql("SELECT session_id FROM tool_sessions WHERE job_id = ?", (job_id,))
    assert confirm(gw, key, session_id, []).status_code == 410
    assert job(gw, key, job_id)["status"] == "failed"
    assert audit(gw, user_id) == []


# -- streaming ------------------------------------------------------------------------------------


def sse_data(gw: Gateway, key: str, path: str, body: dict[str, Any]) -> list[str]:
    """The ``data:`` payloads of a streamed answer, read raw."""
    with gw.client(key) as client, client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_stream_with_an_auto_tool_streams_the_final_answer(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    client = gw.openai(key)

    with client.chat.completions.stream(
        model="weather-bot",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"tools": mcp()},
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == f"Tool said: {PARIS}"
    assert final.choices[0].finish_reason == "stop"
    assert [r["outcome"] for r in audit(gw, user_id)] == ["ok"]


def test_stream_pause_carries_the_session_on_the_finish_chunk(gw: Gateway) -> None:
    user_id, key = new_user(gw)

    data = sse_data(
        gw,
        key,
        "/v1/chat/completions",
        {"model": "weather-bot", "messages": MESSAGES, "tools": mcp(), "stream": True},
    )

    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    [finish] = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish is chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert finish["status"] == "require_confirmation"
    assert isinstance(finish["expires_at"], int) and finish["expires_at"] > time.time()
    [pending] = finish["tool_calls"]
    assert (pending["name"], pending["server"]) == ("get_weather", "weather")
    streamed = [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert [call["id"] for call in streamed] == [pending["id"]]
    assert "session_id" not in chunks[0]  # only the finish chunk tells the pause
    assert [s["session_id"] for s in sessions(gw, key)] == [finish["session_id"]]

    done = confirm(gw, key, finish["session_id"], [pending["id"]])
    assert done.status_code == 200
    assert text_of(done.json()) == f"Tool said: {PARIS}"
    assert [r["approver"] for r in audit(gw, user_id)] == [user_id]


def test_stream_pause_parses_with_the_sdk(gw: Gateway) -> None:
    _, key = new_user(gw)
    client = gw.openai(key)
    with client.chat.completions.stream(
        model="weather-bot",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"tools": mcp()},
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert [s["tool_calls"][0]["id"] for s in sessions(gw, key)] == [call.id]


def test_messages_stream_pause_carries_the_session_in_message_start(gw: Gateway) -> None:
    _, key = new_user(gw)
    body = {
        "model": "weather-bot",
        "max_tokens": 200,
        "messages": MESSAGES,
        "tools": mcp(),
        "stream": True,
    }

    events = [json.loads(d) for d in sse_data(gw, key, "/v1/messages", body)]

    assert events[0]["type"] == "message_start"
    start = events[0]["message"]
    assert start["status"] == "require_confirmation"
    [pending] = start["tool_calls"]
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(b["type"], b["id"], b["name"]) for b in blocks] == [
        ("tool_use", pending["id"], "get_weather")
    ]
    [delta] = [e for e in events if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert events[-1]["type"] == "message_stop"
    done = confirm(gw, key, start["session_id"], [pending["id"]])
    assert done.status_code == 200
    assert done.json()["content"][0]["text"] == f"Tool said: {PARIS}"


# -- failures and limits --------------------------------------------------------------------------


def test_a_tool_server_dying_mid_call_is_a_prompt_tool_error(gw: Gateway) -> None:
    response = register(gw, "crashbox")
    assert response.status_code == 201, response.text
    user_id, key = new_user(gw)
    set_policy(gw, "crash", "auto", user_id=user_id)
    set_policy(gw, "get_weather", "auto", user_id=user_id)

    began = time.monotonic()
    crashed = chat(gw, key, "crasher", tools=mcp("crashbox"))
    elapsed = time.monotonic() - began

    assert crashed.status_code == 200, crashed.text
    answer = text_of(crashed.json())
    assert answer.startswith("Tool said: Tool error: ")
    assert "crash" in answer and "went away" in answer
    assert elapsed < 5  # MCP_CALL_TIMEOUT_S is 10: no hang until the timeout
    assert [(r["tool"], r["outcome"]) for r in audit(gw, user_id)] == [("crash", "error")]

    wait_for(lambda: server_status(gw, "crashbox") == "running", timeout=15, interval=0.1)
    again = chat(gw, key, "weather-bot", tools=mcp("crashbox"))
    assert again.status_code == 200, again.text
    assert text_of(again.json()) == f"Tool said: {PARIS}"


def test_max_tool_rounds_zero_returns_the_call_as_is(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(max_tool_rounds=0)
    setup_tools(gw)
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)

    body = chat(gw, key).json()

    assert not {"status", "session_id", "expires_at", "tool_calls"} & set(body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_weather"]
    assert audit(gw, user_id) == []
    assert sessions(gw, key) == []


def test_an_async_job_whose_confirmation_fails_does_not_wait_forever(gw: Gateway) -> None:
    """The confirm runs the tool, then the next model round fails (the model was disabled in
    between): the session is spent and can never be confirmed again, so the job must end."""
    gw.add_model("fragile-bot", "Mock", params={"tool_call": MODELS["weather-bot"]})
    _, key = new_user(gw)
    job_id = submit(gw, key, "fragile-bot")
    waiting = wait_job(gw, key, job_id, "require_confirmation")
    [listed] = sessions(gw, key)
    patched = gw.admin("PATCH", "/admin/models/fragile-bot", json={"enabled": False})
    assert patched.status_code == 200, patched.text

    response = confirm(gw, key, waiting["session_id"], [listed["tool_calls"][0]["id"]])

    assert response.status_code == 404, response.text  # model_not_found, from the next round
    assert confirm(gw, key, waiting["session_id"], []).status_code == 409
    wait_for(lambda: job(gw, key, job_id)["status"] == "failed", timeout=2, interval=0.05)


def test_cancelling_a_waiting_job_ends_its_session(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    job_id = submit(gw, key, "deleter")
    waiting = wait_job(gw, key, job_id, "require_confirmation")
    [listed] = sessions(gw, key)
    with gw.client(key) as client:
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    response = confirm(gw, key, waiting["session_id"], [listed["tool_calls"][0]["id"]])

    assert audit(gw, user_id) == []  # the cancelled job's tool never runs
    assert response.status_code == 409, response.text
    assert sessions(gw, key) == []
