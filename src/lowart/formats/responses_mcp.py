"""Gateway-run MCP tools told in the Responses API's own items (docs/api.md, "Responses",
"Human confirmation"): ``mcp_list_tools`` for each server offered, ``mcp_call`` for each call
decided, ``mcp_approval_request`` for each call waiting on a person. Pure.

An approval request's id is ``mcpr_`` + the model's call id, so an ``mcp_approval_response``
names the call it decides without another lookup; the session that holds the call is the one
stored with the response that asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lowart.errors import InvalidRequest

APPROVAL_PREFIX = "mcpr_"
FAILED_PREFIXES = ("Tool error: ", "The gateway's tool policy", "The user rejected")


def list_tools_item(
    server: str, tools: Sequence[tuple[str, str, dict[str, Any]]]
) -> dict[str, Any]:
    """One server's tools as offered: ``(name, description, input_schema)`` each."""
    return {
        "type": "mcp_list_tools",
        "id": f"mcpl_{server}",
        "server_label": server,
        "tools": [
            {"name": name, "description": description, "input_schema": schema, "annotations": None}
            for name, description, schema in tools
        ],
        "error": None,
    }


def call_item(ran: Mapping[str, Any], approval_request_id: str | None) -> dict[str, Any]:
    """A decided call: what ran (or why it did not), with the approval that let it."""
    output = str(ran["output"])
    failed = output.startswith(FAILED_PREFIXES)
    return {
        "type": "mcp_call",
        "id": f"mcp_{ran['id']}",
        "server_label": ran["server"],
        "name": ran["name"],
        "arguments": ran["arguments"],
        "output": None if failed else output,
        "error": _execution_error(output) if failed else None,
        "status": "failed" if failed else "completed",
        "approval_request_id": approval_request_id,
    }


def _execution_error(text: str) -> dict[str, Any]:
    """A call that did not run, or failed, as the SDK's ``McpToolExecutionError``."""
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}


def approval_request_item(pending: Mapping[str, Any]) -> dict[str, Any]:
    """A call waiting on a person (a pause's ``tool_calls`` entry)."""
    return {
        "type": "mcp_approval_request",
        "id": APPROVAL_PREFIX + str(pending["id"]),
        "server_label": pending["server"],
        "name": pending["name"],
        "arguments": pending["arguments"],
    }


def approvals(items: Iterable[Mapping[str, Any]]) -> dict[str, bool] | None:
    """The ``mcp_approval_response`` items of an input: the call id each decides, and whether
    it was approved; None when there are none."""
    decided: dict[str, bool] = {}
    for item in items:
        if item.get("type") != "mcp_approval_response":
            continue
        request_id = item.get("approval_request_id")
        if not isinstance(request_id, str) or not request_id.startswith(APPROVAL_PREFIX):
            raise InvalidRequest(
                "An mcp_approval_response must name an approval request (mcpr_…) of the "
                "previous response.",
                param="input",
            )
        decided[request_id.removeprefix(APPROVAL_PREFIX)] = item.get("approve") is True
    return decided or None
