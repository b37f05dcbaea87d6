"""The pure parts of gateway-run tools: naming offered tools, resolving policies, reading calls
and writing results in both wire formats; and the session expiry the tool loop stores."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from lowart.errors import InvalidRequest
from lowart.providers.base import ChatRequest
from lowart.storage.tools import PolicyRow, SessionRow
from lowart.tools.calls import Call, assistant_turn, calls_of, only_calls, result_turns
from lowart.tools.expand import mcp_servers_of, model_body, offered_tools
from lowart.tools.loop import ToolLoop
from lowart.tools.mcp_server import ToolInfo
from lowart.tools.policy import resolve

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = [("get_weather", "Weather in a city.", SCHEMA), ("delete_file", "Delete.", {})]


def mcp(*labels: str) -> list[dict[str, Any]]:
    return [{"type": "mcp", "server_label": label} for label in labels]


def function(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {}}}


# -- expand ---------------------------------------------------------------------------------------


def test_server_labels_in_order_without_repeats() -> None:
    body = {"tools": [*mcp("b", "a"), function("f"), *mcp("b")]}
    assert mcp_servers_of(body) == ["b", "a"]
    assert mcp_servers_of({"tools": [function("f")]}) == []
    assert mcp_servers_of({}) == []


@pytest.mark.parametrize("entry", [{"type": "mcp"}, {"type": "mcp", "server_label": ""}])
def test_an_mcp_entry_needs_a_label(entry: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        mcp_servers_of({"tools": [entry]})


def test_tools_keep_their_own_names_without_a_clash() -> None:
    offered = offered_tools(
        {"tools": mcp("weather", "files")},
        {"weather": [WEATHER[0]], "files": [("read_file", "Read.", {})]},
    )
    assert [(t.exposed, t.server, t.tool) for t in offered] == [
        ("get_weather", "weather", "get_weather"),
        ("read_file", "files", "read_file"),
    ]
    assert offered[0].description == "Weather in a city."
    assert offered[0].input_schema == SCHEMA


def test_a_clash_between_servers_prefixes_only_the_clashing_tools() -> None:
    offered = offered_tools(
        {"tools": mcp("weather", "weather2")}, {"weather": WEATHER, "weather2": [WEATHER[0]]}
    )
    assert [(t.exposed, t.server, t.tool) for t in offered] == [
        ("weather__get_weather", "weather", "get_weather"),
        ("delete_file", "weather", "delete_file"),
        ("weather2__get_weather", "weather2", "get_weather"),
    ]


def test_a_clash_with_a_client_function_prefixes_the_server_tool() -> None:
    anthropic_style = {"name": "delete_file", "input_schema": {}}
    offered = offered_tools(
        {"tools": [*mcp("weather"), function("get_weather"), anthropic_style]},
        {"weather": WEATHER},
    )
    assert [t.exposed for t in offered] == ["weather__get_weather", "weather__delete_file"]


def test_model_body_replaces_mcp_entries_in_the_callers_format() -> None:
    body = {
        "model": "m",
        "messages": [],
        "tools": [*mcp("weather"), function("mine")],
        "stream": True,
        "stream_options": {"include_usage": True},
        "async": True,
    }
    offered = offered_tools(body, {"weather": [WEATHER[0]]})

    openai = model_body(body, offered, "openai")
    assert openai == {
        "model": "m",
        "messages": [],
        "tools": [
            function("mine"),
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city.",
                    "parameters": SCHEMA,
                },
            },
        ],
    }
    anthropic = model_body(body, offered, "anthropic")
    assert anthropic["tools"][1] == {
        "name": "get_weather",
        "description": "Weather in a city.",
        "input_schema": SCHEMA,
    }
    assert "tools" not in model_body({"tools": mcp("empty")}, [], "openai")
    assert body["tools"][0] == {"type": "mcp", "server_label": "weather"}  # not mutated


# -- policy ---------------------------------------------------------------------------------------


def row(
    policy: str, tool: str = "t", server: str | None = None, user: str | None = None
) -> PolicyRow:
    return PolicyRow(id=0, tool_name=tool, server=server, user_id=user, policy=policy, created_at=0)


def test_the_default_is_confirm() -> None:
    assert resolve([], "t", "s", "u") == "confirm"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([row("block")], "block"),
        ([row("block"), row("auto", server="s")], "auto"),
        ([row("auto", server="s"), row("block")], "auto"),
        ([row("block", server="s"), row("auto", user="u")], "auto"),
        ([row("auto", user="u"), row("block", server="s")], "auto"),
        ([row("auto", user="u"), row("block", server="s", user="u"), row("auto")], "block"),
        (
            [row("block", server="s", user="u"), row("auto", user="u"), row("auto", server="s")],
            "block",
        ),
    ],
)
def test_the_most_specific_row_wins(rows: list[PolicyRow], expected: str) -> None:
    assert resolve(rows, "t", "s", "u") == expected


def test_rows_for_other_tools_servers_and_users_are_ignored() -> None:
    others = [
        row("auto", tool="other"),
        row("auto", server="other-server"),
        row("auto", user="other-user"),
        row("auto", server="other-server", user="u"),
        row("auto", server="s", user="other-user"),
    ]
    assert resolve(others, "t", "s", "u") == "confirm"
    assert resolve([*others, row("block")], "t", "s", "u") == "block"


# -- calls ----------------------------------------------------------------------------------------


OPENAI_ANSWER = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "pid", "arguments": ""}},
                ],
            },
        }
    ],
}
ANTHROPIC_ANSWER = {
    "type": "message",
    "stop_reason": "tool_use",
    "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "t2", "name": "pid", "input": {}},
    ],
}


def test_calls_of_both_formats() -> None:
    assert calls_of(OPENAI_ANSWER, "openai") == [
        Call("c1", "get_weather", '{"city":"Paris"}'),
        Call("c2", "pid", ""),
    ]
    assert calls_of(ANTHROPIC_ANSWER, "anthropic") == [
        Call("t1", "get_weather", '{"city":"Paris"}'),
        Call("t2", "pid", "{}"),
    ]
    text_only = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    assert calls_of(text_only, "openai") == []
    assert calls_of({"choices": []}, "openai") == []
    assert calls_of({"content": [{"type": "text", "text": "hi"}]}, "anthropic") == []


def test_call_arguments_hash_and_parse() -> None:
    call = Call("c1", "get_weather", '{"city":"Paris"}')
    assert call.sha256 == hashlib.sha256(b'{"city":"Paris"}').hexdigest()
    assert call.parsed_arguments() == {"city": "Paris"}
    assert Call("c", "n", "  ").parsed_arguments() == {}
    with pytest.raises(ValueError, match="not JSON"):
        Call("c", "n", "{nope").parsed_arguments()
    with pytest.raises(ValueError, match="not a JSON object"):
        Call("c", "n", "[1]").parsed_arguments()


def test_result_turns_shapes() -> None:
    results = [("c1", "sunny"), ("c2", "42")]
    assert result_turns(results, "openai") == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "42"},
    ]
    assert result_turns(results, "anthropic") == [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "42"},
            ],
        }
    ]


def test_assistant_turn_both_formats() -> None:
    turn = assistant_turn(OPENAI_ANSWER, "openai")
    assert turn["role"] == "assistant"
    assert turn["content"] == "Let me look."
    assert [c["id"] for c in turn["tool_calls"]] == ["c1", "c2"]
    assert assistant_turn(ANTHROPIC_ANSWER, "anthropic") == {
        "role": "assistant",
        "content": ANTHROPIC_ANSWER["content"],
    }


def test_only_calls_keeps_the_pending_calls() -> None:
    kept = only_calls(OPENAI_ANSWER, {"c2"}, "openai")
    choice = kept["choices"][0]
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["c2"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me look."
    # the original is untouched
    assert len(OPENAI_ANSWER["choices"][0]["message"]["tool_calls"]) == 2  # type: ignore[index]

    blocks = only_calls(ANTHROPIC_ANSWER, {"t1"}, "anthropic")["content"]
    assert [(b["type"], b.get("id")) for b in blocks] == [("text", None), ("tool_use", "t1")]
    assert len(ANTHROPIC_ANSWER["content"]) == 3  # type: ignore[arg-type]


# -- the stored expiry of a pause -----------------------------------------------------------------


class _Repo:
    def __init__(self) -> None:
        self.sessions: list[SessionRow] = []

    async def policies(self) -> list[PolicyRow]:
        return []

    async def create_session(self, session: SessionRow) -> None:
        self.sessions.append(session)


class _Manager:
    def tools(self, name: str) -> list[ToolInfo]:
        return [ToolInfo("get_weather", "Weather.", SCHEMA)]


class _Dispatcher:
    async def complete(self, admission: object, request: ChatRequest) -> SimpleNamespace:
        return SimpleNamespace(body=msgspec.json.encode(OPENAI_ANSWER_ONE))


OPENAI_ANSWER_ONE = {
    **OPENAI_ANSWER,
    "choices": [
        {
            **OPENAI_ANSWER["choices"][0],  # type: ignore[index]
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": OPENAI_ANSWER["choices"][0]["message"]["tool_calls"][:1],  # type: ignore[index]
            },
        }
    ],
}


@pytest.mark.parametrize("now", [1000.3, 1000.7])
async def test_a_pause_is_not_born_expired(now: float) -> None:
    repo = _Repo()
    loop = ToolLoop(
        dispatcher=_Dispatcher(),  # type: ignore[arg-type]
        manager=_Manager(),  # type: ignore[arg-type]
        repo=repo,  # type: ignore[arg-type]
        max_rounds=8,
        session_ttl_s=0.5,
        clock=lambda: now,
    )
    request = ChatRequest(
        body={"model": "m", "messages": [], "tools": mcp("weather")},
        stream=False,
        wants_usage=False,
        request_id="r1",
    )
    principal = SimpleNamespace(user_id="u1")
    admission = SimpleNamespace(requested="m")

    outcome = await loop.run(principal, admission, request)  # type: ignore[arg-type]

    assert outcome.paused
    [session] = repo.sessions
    assert session.expires_at > now  # confirmable until TOOL_SESSION_TTL_S has passed
    assert outcome.body["expires_at"] >= now + 0.5  # the pause never tells an earlier expiry
