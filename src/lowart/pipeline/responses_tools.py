"""Gateway-run tools for a Responses caller (docs/api.md, "Responses"): the conversation runs
through the tool loop as Chat Completions, and its outcome is told as a Response whose output
shows the servers' tools (``mcp_list_tools``), the calls decided (``mcp_call``) and, when a
call waits on a person, ``mcp_approval_request`` items in a ``completed`` response, as OpenAI's
remote-MCP flow does. OpenAI's default for an ``mcp`` tool without ``require_approval`` is
``"always"``, and so it is here: the caller may tighten the admin's policy, never loosen it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection
from typing import Any

from lowart.formats.ids import OPENAI, response_id
from lowart.formats.responses_mcp import (
    APPROVAL_PREFIX,
    approval_request_item,
    call_item,
    list_tools_item,
)
from lowart.formats.responses_output import chat_to_response
from lowart.formats.responses_request import responses_to_chat
from lowart.providers.base import ChatRequest
from lowart.tools.expand import OfferedTool, mcp_servers_of
from lowart.tools.loop import Outcome


def as_chat(request: ChatRequest) -> ChatRequest:
    """The Responses request as the tool loop runs it: Chat Completions, whole rounds, with
    OpenAI's default approval for ``mcp`` tools that do not say."""
    body = dict(request.body)
    body["tools"] = [
        {"require_approval": "always", **tool}
        if isinstance(tool, dict) and tool.get("type") == "mcp"
        else tool
        for tool in body.get("tools") or ()
    ]
    chat = responses_to_chat(body, body.get("input") or [])
    return dataclasses.replace(request, body=chat, fmt=OPENAI, stream=False, wants_usage=False)


def told_as_response(
    outcome: Outcome,
    request: ChatRequest,
    offered: list[OfferedTool],
    approved: Collection[str] = (),
) -> dict[str, Any]:
    """The tool loop's outcome (a chat completion, or a pause) as a Response; ``approved``:
    the calls a person decided on, whose ``mcp_call`` items name their approval request."""
    final = dict(outcome.body)
    pending = final.pop("tool_calls", None) if outcome.paused else None
    if outcome.paused:  # the calls waiting on a person are told as approval requests
        final = _without_calls(final)
    response = chat_to_response(
        final,
        response_id=response_id(request.request_id),
        created_at=int(time.time()),
        request=request.body,
    )
    listed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        label: [] for label in mcp_servers_of(request.body)
    }
    for tool in offered:
        listed.setdefault(tool.server, []).append((tool.tool, tool.description, tool.input_schema))
    items = [list_tools_item(server, tools) for server, tools in listed.items()]
    items += [
        call_item(ran, APPROVAL_PREFIX + ran["id"] if ran["id"] in approved else None)
        for ran in outcome.ran
    ]
    items += response["output"]
    items += [approval_request_item(call) for call in pending or ()]
    response["output"] = items
    if outcome.paused:
        response["status"] = "completed"  # as OpenAI's: the SDK's stream helper requires it
        response["incomplete_details"] = None
    return response


def _without_calls(completion: dict[str, Any]) -> dict[str, Any]:
    """A pause object's completion with its pending calls taken out of the message."""
    choices = []
    for choice in completion.get("choices") or ():
        message = {k: v for k, v in (choice.get("message") or {}).items() if k != "tool_calls"}
        choices.append({**choice, "message": message, "finish_reason": "stop"})
    return {
        k: v
        for k, v in {**completion, "choices": choices}.items()
        if k not in ("status", "session_id", "expires_at")
    }
