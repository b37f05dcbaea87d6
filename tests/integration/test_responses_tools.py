"""Gateway-run MCP tools for a Responses caller, in OpenAI's own items (docs/api.md,
"Responses", "Human confirmation"): ``mcp_list_tools``, ``mcp_approval_request`` in a
``completed`` response, ``mcp_approval_response`` to go on, ``mcp_call`` for what ran. The real
example MCP server over stdio and Mock models that call its tools, through the ``openai`` SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.integration.test_tools import (
    PARIS,
    audit,
    confirm,
    new_user,
    sessions,
    set_policy,
    setup_tools,
    start_gateway,
)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("rtools"), mcp_call_timeout_s=10)
    try:
        setup_tools(gateway, "weather")
        yield gateway
    finally:
        gateway.stop()


def _weather(**extra: Any) -> list[dict[str, Any]]:
    return [{"type": "mcp", "server_label": "weather", **extra}]


@pytest.mark.parametrize("approve", [True, False])
def test_confirm_policy_asks_in_openai_items_and_goes_on(gw: Gateway, approve: bool) -> None:
    user_id, key = new_user(gw)
    client = gw.openai(key)
    with client.responses.stream(
        model="weather-bot", input="weather?", tools=_weather(require_approval="never")
    ) as stream:  # "never" cannot loosen the admin's default policy, confirm
        asked = stream.get_final_response()
    assert asked.status == "completed"
    kinds = [item.type for item in asked.output]
    assert kinds[0] == "mcp_list_tools" and kinds[-1] == "mcp_approval_request"
    listed = asked.output[0]
    assert listed.server_label == "weather"  # type: ignore[union-attr]
    assert "get_weather" in [t.name for t in listed.tools]  # type: ignore[union-attr]
    request = asked.output[-1]
    assert request.name == "get_weather" and request.server_label == "weather"  # type: ignore[union-attr]
    assert request.arguments == '{"city": "Paris"}' or '"Paris"' in request.arguments  # type: ignore[union-attr]
    session_id = sessions(gw, key)[0]["session_id"]
    answer = client.responses.create(
        model="weather-bot",
        previous_response_id=asked.id,
        tools=_weather(),
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": approve,
                "reason": "checked by a person",
            }
        ],
    )
    calls = [item for item in answer.output if item.type == "mcp_call"]
    assert len(calls) == 1 and calls[0].approval_request_id == request.id
    if approve:
        assert calls[0].output == PARIS and calls[0].error is None
    else:
        error = calls[0].error
        assert calls[0].output is None and error is not None
        assert error.type == "mcp_tool_execution_error"
        assert "rejected" in error.content[0]["text"]  # type: ignore[union-attr,index]
    assert answer.output_text
    rows = audit(gw, user_id)
    assert [r["outcome"] for r in rows] == ["ok" if approve else "rejected"]
    assert rows[0]["approver"] == user_id and rows[0]["session_id"] == session_id
    # The same session answered a second time, by either door: 409.
    assert confirm(gw, key, session_id, []).status_code == 409
    with gw.client(key) as http:
        again = http.post(
            "/v1/responses",
            json={
                "model": "weather-bot",
                "previous_response_id": asked.id,
                "input": [
                    {
                        "type": "mcp_approval_response",
                        "approval_request_id": request.id,
                        "approve": True,
                    }
                ],
            },
        )
    assert again.status_code == 409, again.text


def test_callers_tighten_never_loosen_and_narrow_the_tools(gw: Gateway) -> None:
    user_id, key = new_user(gw)
    set_policy(gw, "get_weather", "auto", user_id=user_id)
    client = gw.openai(key)
    ran = client.responses.create(
        model="weather-bot", input="weather?", tools=_weather(require_approval="never")
    )
    calls = [item for item in ran.output if item.type == "mcp_call"]
    assert [c.output for c in calls] == [PARIS]  # auto, and the caller did not ask
    for rule in ("always", {"always": {"tool_names": ["get_weather"]}}, None):
        extra = {} if rule is None else {"require_approval": rule}  # omitted: OpenAI's "always"
        asked = client.responses.create(model="weather-bot", input="w?", tools=_weather(**extra))
        assert asked.output[-1].type == "mcp_approval_request", rule
    narrowed = client.responses.create(
        model="weather-bot",
        input="w?",
        tools=_weather(require_approval="never", allowed_tools=["other_tool"]),
    )
    assert narrowed.output[0].type == "mcp_list_tools"
    assert narrowed.output[0].tools == []  # type: ignore[union-attr]
    assert not [item for item in narrowed.output if item.type == "mcp_call"]
