"""Gateway-run tools in the Responses API's items, and a caller's say in their policy: pure
(docs/api.md, "Responses", "Human confirmation in OpenAI's approval items")."""

from __future__ import annotations

import pytest

from lowart.errors import InvalidRequest
from lowart.formats.responses_mcp import approval_request_item, approvals, call_item
from lowart.tools.expand import allowed_tools, approval_rules
from lowart.tools.loop import BLOCKED, REJECTED
from lowart.tools.policy import AUTO, BLOCK, CONFIRM, caller_wants_approval, tightened

PENDING = {"id": "call_1", "server": "helpdesk", "name": "delete_ticket", "arguments": '{"id":42}'}


def test_an_approval_names_the_call_it_decides() -> None:
    asked = approval_request_item(PENDING)
    assert asked == {
        "type": "mcp_approval_request",
        "id": "mcpr_call_1",
        "server_label": "helpdesk",
        "name": "delete_ticket",
        "arguments": '{"id":42}',
    }
    answer = {"type": "mcp_approval_response", "approval_request_id": asked["id"], "approve": True}
    rejected = {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": False}
    assert approvals([{"type": "message"}, answer, rejected]) == {"call_1": True, "x": False}
    assert approvals([{"type": "message", "role": "user", "content": "hi"}]) is None
    with pytest.raises(InvalidRequest) as bad:
        approvals([{"type": "mcp_approval_response", "approval_request_id": "call_1"}])
    assert bad.value.param == "input"


@pytest.mark.parametrize(
    ("output", "status"),
    [
        ("deleted", "completed"),
        (REJECTED, "failed"),
        (BLOCKED, "failed"),
        ("Tool error: x", "failed"),
    ],
)
def test_a_decided_call_says_what_ran(output: str, status: str) -> None:
    item = call_item({**PENDING, "output": output}, "mcpr_call_1")
    assert item["status"] == status and item["approval_request_id"] == "mcpr_call_1"
    error = {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": output}]}
    assert (item["output"], item["error"]) == (
        (output, None) if status == "completed" else (None, error)
    )


@pytest.mark.parametrize(
    ("rule", "wants"),
    [
        ("always", True),
        ("never", False),
        (None, False),
        ({"always": {"tool_names": ["delete_ticket"]}}, True),
        ({"always": {"tool_names": ["other"]}}, False),
        ({"never": {"tool_names": ["delete_ticket"]}}, False),
    ],
)
def test_a_caller_tightens_and_never_loosens(rule: object, wants: bool) -> None:
    assert caller_wants_approval(rule, "delete_ticket") is wants
    assert tightened(AUTO, wants) == (CONFIRM if wants else AUTO)
    assert tightened(BLOCK, wants) == BLOCK  # never loosened, not even to confirm
    assert tightened(CONFIRM, wants) == CONFIRM


def test_allowed_tools_narrow_a_server() -> None:
    body = {
        "tools": [
            {"type": "mcp", "server_label": "a", "allowed_tools": ["x", "y"]},
            {"type": "mcp", "server_label": "b", "allowed_tools": {"tool_names": ["z"]}},
            {"type": "mcp", "server_label": "c", "require_approval": "never"},
            {"type": "function", "name": "f"},
        ]
    }
    assert allowed_tools(body) == {"a": {"x", "y"}, "b": {"z"}}
    assert approval_rules(body) == {"c": "never"}
