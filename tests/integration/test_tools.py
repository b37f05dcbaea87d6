"""Gateway-run tools end to end: the real server, the real example MCP server over stdio
(examples/mcp_weather.py) and Mock models that call its tools.

One gateway serves this module. Policies are global rows, so each test gets its own user and
scopes its policy rows to that user. The flows that need their own settings (expiry, restart,
jobs, streaming, a crashing tool server, the round limit) are in ``test_tools_flows.py``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lowart.app import create_app
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway, gateway_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp_weather.py"
PARIS = "It is 18C and sunny in Paris."
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
# Mock models: each answers with one tool call until the last message is a tool result.
MODELS: dict[str, dict[str, Any]] = {
    "weather-bot": {"name": "get_weather", "arguments": {"city": "Paris"}},
    "deleter": {"name": "delete_file", "arguments": {"path": "/srv/important.txt"}},
    "crasher": {"name": "crash", "arguments": {}},
    "client-bot": {"name": "client_side", "arguments": {"x": 1}},
    "clash-bot": {"name": "weather2__get_weather", "arguments": {"city": "Paris"}},
    "env-bot": {"name": "env", "arguments": {"name": "SECRET_TOKEN"}},
}
CLIENT_TOOL = {
    "type": "function",
    "function": {
        "name": "client_side",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
    },
}


# -- helpers shared with test_tools_flows.py ------------------------------------------------------


def server_body(name: str = "weather", **extra: Any) -> dict[str, Any]:
    """The example server as a stdio registration."""
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(EXAMPLE)],
        **extra,
    }


def register(gw: Gateway, name: str = "weather", **extra: Any) -> httpx.Response:
    return gw.admin("POST", "/admin/mcp/servers", json=server_body(name, **extra))


def setup_tools(gw: Gateway, *servers: str) -> None:
    """Register the example server under each name (``weather`` by default) and the models."""
    for name in servers or ("weather",):
        response = register(gw, name)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "running"
    for model_id, call in MODELS.items():
        gw.add_model(model_id, "Mock", params={"tool_call": call})


def new_user(gw: Gateway, prefix: str = "u") -> tuple[str, str]:
    """A fresh user: (user id, API key)."""
    user_id = f"{prefix}-{secrets.token_hex(4)}"
    return user_id, gw.create_user(user_id)


def mcp(*labels: str) -> list[dict[str, Any]]:
    return [{"type": "mcp", "server_label": label} for label in labels or ("weather",)]


def chat(
    gw: Gateway,
    key: str,
    model: str = "weather-bot",
    tools: list[dict[str, Any]] | None = None,
    **body: Any,
) -> httpx.Response:
    payload = {"model": model, "messages": MESSAGES, "tools": tools or mcp(), **body}
    with gw.client(key) as client:
        return client.post("/v1/chat/completions", json=payload)


def confirm(gw: Gateway, key: str, session_id: str, approved: list[str]) -> httpx.Response:
    with gw.client(key) as client:
        return client.post(
            "/v1/tools/confirm", json={"session_id": session_id, "approved_ids": approved}
        )


def sessions(gw: Gateway, key: str) -> list[dict[str, Any]]:
    with gw.client(key) as client:
        response = client.get("/v1/tools/sessions")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def set_policy(gw: Gateway, tool: str, policy: str, **scope: str) -> None:
    response = gw.admin(
        "POST", "/admin/tools/policies", json={"tool_name": tool, "policy": policy, **scope}
    )
    assert response.status_code == 201, response.text


AUDIT_COLUMNS = (
    "request_id",
    "session_id",
    "user_id",
    "server",
    "tool",
    "arguments_sha256",
    "policy",
    "approver",
    "outcome",
    "result_bytes",
)


def audit(gw: Gateway, user_id: str) -> list[dict[str, Any]]:
    rows = gw.sql(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM tool_audit WHERE user_id = ? ORDER BY id",
        (user_id,),
    )
    return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in rows]


def text_of(completion: dict[str, Any]) -> str:
    return str(completion["choices"][0]["message"]["content"])


def server_status(gw: Gateway, name: str) -> str | None:
    servers = gw.admin("GET", "/admin/mcp/servers").json()["data"]
    return next((s["status"] for s in servers if s["name"] == name), None)


def sha256(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(arguments, separators=(",", ":")).encode()).hexdigest()


def start_gateway(tmp: Path, **overrides: Any) -> Gateway:
    """A gateway outside the per-test ``make_gateway`` fixture (module-scoped ones)."""
    settings = gateway_settings(tmp, **overrides)
    app = create_app(settings)
    return Gateway(app, run_in_thread(app), settings)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(
        tmp_path_factory.mktemp("tools"), mcp_call_timeout_s=10, job_poll_s=0.05
    )
    try:
        setup_tools(gateway, "weather", "weather2")
        yield gateway
    finally:
        gateway.stop()


# -- the policies ---------------------------------------------------------------------------------


def test_auto_runs_the_tool_and_bills_every_round(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    client = gw.openai(key)

    raw = client.chat.completions.with_raw_response.create(
        model="weather-bot",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=mcp(),  # type: ignore[arg-type]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == f"Tool said: {PARIS}"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.model_extra or {}).get("status") is None
    request_id = raw.headers["x-request-id"]
    gw.flush()
    rows = gw.sql(
        "SELECT status, prompt_tokens + completion_tokens FROM usage_records WHERE request_id = ?",
        (request_id,),
    )
    assert [status for status, _ in rows] == ["ok", "ok"]  # both model rounds
    (used,) = gw.sql("SELECT token_used FROM users WHERE user_id = ?", (user_id,))[0]
    assert used == sum(tokens for _, tokens in rows) > 0
    [row] = audit(gw, user_id)
    assert row["request_id"] == request_id
    assert (row["server"], row["tool"], row["policy"]) == ("weather", "get_weather", "auto")
    assert row["arguments_sha256"] == sha256({"city": "Paris"})
    assert row["approver"] is None
    assert row["session_id"] is None
    assert row["outcome"] == "ok"
    assert row["result_bytes"] == len(PARIS.encode())


def test_block_tells_the_model_and_runs_nothing(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "delete_file", "block", server="weather", user_id=user_id)

    response = chat(gw, key, "deleter")

    assert response.status_code == 200, response.text
    body = response.json()
    assert "status" not in body
    assert "blocked" in text_of(body)
    assert text_of(body).startswith("Tool said: ")
    assert [(r["tool"], r["outcome"]) for r in audit(gw, user_id)] == [("delete_file", "blocked")]
    assert sessions(gw, key) == []


def test_a_more_specific_row_wins_over_a_server_wide_one(gw: Gateway) -> None:
    """A user+server ``auto`` row beats a server-wide ``block`` row for the same tool; another
    user gets the server-wide row."""
    user_id, key = new_user(gw)
    other_id, other_key = new_user(gw)
    set_policy(gw, "get_weather", "block", server="weather2")
    set_policy(gw, "get_weather", "auto", server="weather2", user_id=user_id)
    try:
        body = chat(gw, key, "clash-bot", tools=mcp("weather", "weather2")).json()
        other = chat(gw, other_key, "clash-bot", tools=mcp("weather", "weather2")).json()
    finally:  # the server-wide row would reach the other tests' users
        params = {"tool_name": "get_weather", "server": "weather2"}
        assert gw.admin("DELETE", "/admin/tools/policies", params=params).status_code == 200

    assert text_of(body) == f"Tool said: {PARIS}"
    [row] = audit(gw, user_id)
    assert (row["server"], row["outcome"]) == ("weather2", "ok")
    assert "blocked" in text_of(other)
    assert [r["outcome"] for r in audit(gw, other_id)] == ["blocked"]


# -- confirmation ---------------------------------------------------------------------------------


def pause(gw: Gateway, key: str, model: str = "weather-bot") -> dict[str, Any]:
    response = chat(gw, key, model)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "require_confirmation", body
    return body


def test_confirm_pauses_with_a_parsable_object_then_runs_once_approved(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    other_id, other_key = new_user(gw, "other")
    client = gw.openai(key)

    before = time.time()
    completion = client.chat.completions.create(
        model="weather-bot",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=mcp(),  # type: ignore[arg-type]
    )

    choice = completion.choices[0]
    assert completion.object == "chat.completion"
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    extra = completion.model_extra or {}
    assert extra["status"] == "require_confirmation"
    session_id = extra["session_id"]
    assert isinstance(session_id, str) and session_id
    assert isinstance(extra["expires_at"], int)
    assert before + 800 < extra["expires_at"] <= time.time() + 901  # TOOL_SESSION_TTL_S 900
    assert extra["tool_calls"] == [
        {"id": call.id, "name": "get_weather", "arguments": '{"city":"Paris"}', "server": "weather"}
    ]
    assert audit(gw, user_id) == []  # nothing ran yet

    [listed] = sessions(gw, key)
    assert listed["session_id"] == session_id
    assert listed["tool_calls"] == extra["tool_calls"]
    assert sessions(gw, other_key) == []

    stranger = confirm(gw, other_key, session_id, [call.id])
    assert stranger.status_code == 404, stranger.text
    unknown = confirm(gw, key, "sess_" + "0" * 32, [call.id])
    assert unknown.status_code == 404

    done = confirm(gw, key, session_id, [call.id])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["object"] == "chat.completion"
    assert text_of(body) == f"Tool said: {PARIS}"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "session_id" not in body
    assert sessions(gw, key) == []

    again = confirm(gw, key, session_id, [call.id])
    assert again.status_code == 409, again.text
    [row] = audit(gw, user_id)
    assert (row["tool"], row["policy"], row["outcome"]) == ("get_weather", "confirm", "ok")
    assert row["approver"] == user_id
    assert row["session_id"] == session_id
    assert row["result_bytes"] == len(PARIS.encode())
    assert audit(gw, other_id) == []


def test_confirm_billing_covers_the_round_after_the_confirmation(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    paused = pause(gw, key)
    done = confirm(gw, key, paused["session_id"], [paused["tool_calls"][0]["id"]])
    assert done.status_code == 200
    gw.flush()
    rows = gw.sql(
        "SELECT request_id, status, prompt_tokens + completion_tokens FROM usage_records "
        "WHERE user_id = ? ORDER BY id",
        (user_id,),
    )
    assert [status for _, status, _ in rows] == ["ok", "ok"]
    assert rows[1][0] == done.headers["x-request-id"]  # the confirm's own round
    (used,) = gw.sql("SELECT token_used FROM users WHERE user_id = ?", (user_id,))[0]
    assert used == sum(tokens for _, _, tokens in rows)


def test_reject_tells_the_model_the_user_rejected_the_call(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    paused = pause(gw, key, "deleter")
    assert paused["tool_calls"][0]["name"] == "delete_file"

    done = confirm(gw, key, paused["session_id"], [])

    assert done.status_code == 200, done.text
    answer = text_of(done.json())
    assert answer.startswith("Tool said: ")
    assert "user rejected" in answer
    assert "Deleted" not in answer
    assert not [r for r in audit(gw, user_id) if r["outcome"] == "ok"]
    assert confirm(gw, key, paused["session_id"], []).status_code == 409


def test_an_unknown_approved_id_is_a_400_and_leaves_the_session_confirmable(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    paused = pause(gw, key)
    call_id = paused["tool_calls"][0]["id"]

    bad = confirm(gw, key, paused["session_id"], [call_id, "call_not_in_this_session"])

    assert bad.status_code == 400, bad.text
    assert audit(gw, user_id) == []
    assert [s["session_id"] for s in sessions(gw, key)] == [paused["session_id"]]
    done = confirm(gw, key, paused["session_id"], [call_id])
    assert done.status_code == 200, done.text
    assert text_of(done.json()) == f"Tool said: {PARIS}"


def test_two_concurrent_confirms_run_the_call_once(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    paused = pause(gw, key, "deleter")
    call_id = paused["tool_calls"][0]["id"]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def go() -> None:
        with gw.client(key) as client:
            barrier.wait()
            response = client.post(
                "/v1/tools/confirm",
                json={"session_id": paused["session_id"], "approved_ids": [call_id]},
            )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(statuses) == [200, 409]
    rows = gw.sql("SELECT outcome FROM tool_audit WHERE session_id = ?", (paused["session_id"],))
    assert rows == [("ok",)]
    assert len(audit(gw, user_id)) == 1


def test_arguments_changed_after_the_pause_are_never_run(gw: Gateway) -> None:
    """S6: a confirmation is bound to sha256(arguments); a stored call edited afterwards fails."""
    user_id, key = new_user(gw)
    paused = pause(gw, key, "deleter")
    session_id = paused["session_id"]
    [(pending,)] = gw.sql("SELECT pending FROM tool_sessions WHERE session_id = ?", (session_id,))
    calls = json.loads(pending)
    calls[0]["arguments"] = json.dumps({"path": "/etc/passwd"})
    gw.sql(
        "UPDATE tool_sessions SET pending = ? WHERE session_id = ?", (json.dumps(calls), session_id)
    )

    response = confirm(gw, key, session_id, [calls[0]["id"]])

    assert response.status_code == 409, response.text
    assert audit(gw, user_id) == []
    assert confirm(gw, key, session_id, [calls[0]["id"]]).status_code == 409


# -- /v1/messages ---------------------------------------------------------------------------------


def test_messages_callers_get_a_message_pause_then_a_message(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    client = gw.anthropic(key)

    raw = client.messages.with_raw_response.create(
        model="weather-bot",
        max_tokens=200,
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=mcp(),  # type: ignore[arg-type]
    )
    message = raw.parse()

    assert message.type == "message"
    assert message.stop_reason == "tool_use"
    [block] = [b for b in message.content if b.type == "tool_use"]
    assert block.name == "get_weather"  # type: ignore[union-attr]
    assert block.input == {"city": "Paris"}  # type: ignore[union-attr]
    extra = json.loads(raw.http_response.text)
    assert extra["status"] == "require_confirmation"
    assert isinstance(extra["expires_at"], int) and extra["expires_at"] > time.time()
    assert extra["tool_calls"] == [
        {
            "id": block.id,  # type: ignore[union-attr]
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "server": "weather",
        }
    ]

    done = confirm(gw, key, extra["session_id"], [block.id])  # type: ignore[union-attr]

    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["type"] == "message"
    assert answer["stop_reason"] == "end_turn"
    assert [b["text"] for b in answer["content"] if b["type"] == "text"] == [f"Tool said: {PARIS}"]
    [row] = audit(gw, user_id)
    assert (row["approver"], row["outcome"]) == (user_id, "ok")


def test_messages_auto_runs_the_tool(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    message = gw.anthropic(key).messages.create(
        model="weather-bot",
        max_tokens=200,
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=mcp(),  # type: ignore[arg-type]
    )
    assert message.stop_reason == "end_turn"
    assert [b.text for b in message.content if b.type == "text"] == [f"Tool said: {PARIS}"]  # type: ignore[union-attr]
    assert [r["outcome"] for r in audit(gw, user_id)] == ["ok"]


# -- names and the client's own tools -------------------------------------------------------------


def test_client_function_tools_go_back_to_the_client_unchanged(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)

    response = chat(gw, key, "client-bot", tools=[*mcp(), CLIENT_TOOL])

    assert response.status_code == 200, response.text
    body = response.json()
    assert not {"status", "session_id", "expires_at", "tool_calls"} & set(body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "client_side", "arguments": '{"x":1}'}
    assert sessions(gw, key) == []
    assert audit(gw, user_id) == []


def test_a_clash_renames_the_server_tools_on_both_servers(gw: Gateway) -> None:
    """Both servers offer get_weather: the model must call ``<server>__get_weather``; a call to
    the bare name is no gateway tool and goes back to the caller as is."""
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)

    renamed = chat(gw, key, "clash-bot", tools=mcp("weather", "weather2")).json()
    bare = chat(gw, key, "weather-bot", tools=mcp("weather", "weather2")).json()

    assert text_of(renamed) == f"Tool said: {PARIS}"
    assert [(r["server"], r["tool"]) for r in audit(gw, user_id)] == [("weather2", "get_weather")]
    assert bare["choices"][0]["finish_reason"] == "tool_calls"
    assert "status" not in bare
    # without the clash, the bare name is the gateway's tool again
    assert text_of(chat(gw, key, "weather-bot", tools=mcp("weather2")).json()) == (
        f"Tool said: {PARIS}"
    )


def test_a_client_function_named_like_a_server_tool_stays_the_clients(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    own = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}

    body = chat(gw, key, "weather-bot", tools=[*mcp(), own]).json()

    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "status" not in body
    assert audit(gw, user_id) == []


def test_an_unknown_server_label_is_a_400(gw: Gateway) -> None:
    _, key = new_user(gw)
    response = chat(gw, key, tools=mcp("no-such-server"))
    assert response.status_code == 400, response.text
    assert "no-such-server" in response.text


# -- admin ----------------------------------------------------------------------------------------


def test_server_secrets_are_write_only(gw: Gateway) -> None:
    canary = "canary-" + secrets.token_hex(12)
    name = "secretive-" + secrets.token_hex(3)

    created = register(gw, name, env={"SECRET_TOKEN": canary}, headers={"X-Token": canary})

    assert created.status_code == 201, created.text
    assert created.json()["env_set"] is True
    responses = [
        created,
        gw.admin("GET", "/admin/mcp/servers"),
        gw.admin("GET", f"/admin/mcp/servers/{name}/tools"),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert canary not in response.text
        assert "SECRET_TOKEN" not in response.text
    [listed] = [s for s in responses[1].json()["data"] if s["name"] == name]
    assert listed["env_set"] is True and listed["status"] == "running"
    stored = b"".join(p.read_bytes() for p in gw.db_path.parent.glob(gw.db_path.name + "*"))
    assert name.encode() in stored  # the row is there, in the file or its WAL
    assert canary.encode() not in stored
    # the env still reaches the child process
    user_id, key = new_user(gw)
    set_policy(gw, "env", "auto", user_id=user_id)
    assert text_of(chat(gw, key, "env-bot", tools=mcp(name)).json()) == f"Tool said: {canary}"
    assert gw.admin("DELETE", f"/admin/mcp/servers/{name}").status_code == 200


def test_admin_lists_tools_and_deletes_servers(gw: Gateway) -> None:
    tools = gw.admin("GET", "/admin/mcp/servers/weather/tools")
    assert tools.status_code == 200
    by_name = {t["name"]: t for t in tools.json()["tools"]}
    assert {"get_weather", "delete_file", "crash"} <= set(by_name)
    schema = by_name["get_weather"]["input_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["properties"]["city"]["type"] == "string"

    alias = gw.admin("POST", "/admin/mcp/register", json=server_body("aliased"))
    assert alias.status_code == 201, alias.text
    assert server_status(gw, "aliased") == "running"
    assert gw.admin("GET", "/admin/mcp/servers/aliased/tools").status_code == 200

    deleted = gw.admin("DELETE", "/admin/mcp/servers/aliased")
    assert deleted.status_code == 200
    assert server_status(gw, "aliased") is None
    assert gw.admin("GET", "/admin/mcp/servers/aliased/tools").status_code == 404
    assert gw.admin("DELETE", "/admin/mcp/servers/aliased").status_code == 404
    _, key = new_user(gw)
    assert chat(gw, key, tools=mcp("aliased")).status_code == 400


def test_a_server_that_cannot_start_is_refused(gw: Gateway) -> None:
    bad = gw.admin(
        "POST",
        "/admin/mcp/servers",
        json={"name": "broken", "transport": "stdio", "command": "/nonexistent/mcp-binary"},
    )
    assert bad.status_code == 400, bad.text
    assert server_status(gw, "broken") is None
    no_command = gw.admin("POST", "/admin/mcp/servers", json={"name": "x", "transport": "stdio"})
    assert no_command.status_code == 400
    bad_name = gw.admin("POST", "/admin/mcp/servers", json=server_body("bad name!"))
    assert bad_name.status_code == 400
    _, key = new_user(gw)
    with gw.client(key) as client:  # not an admin
        assert client.post("/admin/mcp/servers", json=server_body("mine")).status_code in (
            401,
            403,
        )
        assert client.get("/admin/mcp/servers").status_code in (401, 403)


def test_policies_round_trip(gw: Gateway) -> None:
    tool = "tool-" + secrets.token_hex(3)

    def rows() -> list[dict[str, Any]]:
        data = gw.admin("GET", "/admin/tools/policies").json()["data"]
        return [r for r in data if r["tool_name"] == tool]

    created = gw.admin(
        "POST",
        "/admin/tools/policies",
        json={"tool_name": tool, "policy": "auto", "server": "weather", "user_id": "alice"},
    )
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in ("tool_name", "server", "user_id", "policy")} == {
        "tool_name": tool,
        "server": "weather",
        "user_id": "alice",
        "policy": "auto",
    }
    set_policy(gw, tool, "block")  # global row: a different key
    set_policy(gw, tool, "confirm", server="weather", user_id="alice")  # replaces the first
    assert sorted((r["policy"], r["server"], r["user_id"]) for r in rows()) == [
        ("block", None, None),
        ("confirm", "weather", "alice"),
    ]

    gone = gw.admin(
        "DELETE",
        "/admin/tools/policies",
        params={"tool_name": tool, "server": "weather", "user_id": "alice"},
    )
    assert gone.status_code == 200, gone.text
    assert [(r["server"], r["policy"]) for r in rows()] == [(None, "block")]
    again = gw.admin(
        "DELETE",
        "/admin/tools/policies",
        params={"tool_name": tool, "server": "weather", "user_id": "alice"},
    )
    assert again.status_code == 404
    assert (
        gw.admin("DELETE", "/admin/tools/policies", params={"tool_name": tool}).status_code == 200
    )
    assert rows() == []

    bad = gw.admin("POST", "/admin/tools/policies", json={"tool_name": tool, "policy": "maybe"})
    assert bad.status_code == 400, bad.text
    assert gw.admin("DELETE", "/admin/tools/policies").status_code == 400  # no tool_name
    assert rows() == []


def test_a_refused_re_registration_leaves_the_running_server_alone(gw: Gateway) -> None:
    name = "victim-" + secrets.token_hex(3)
    assert register(gw, name).status_code == 201
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)

    bad = gw.admin(
        "POST",
        "/admin/mcp/servers",
        json={"name": name, "transport": "stdio", "command": "/nonexistent/mcp-binary"},
    )

    assert bad.status_code == 400, bad.text
    [(command,)] = gw.sql("SELECT command FROM mcp_servers WHERE name = ?", (name,))
    assert command == sys.executable  # the stored registration is the old one
    assert server_status(gw, name) == "running"
    answer = chat(gw, key, tools=mcp(name))
    assert answer.status_code == 200, answer.text
    assert text_of(answer.json()) == f"Tool said: {PARIS}"
