"""Expanding ``{"type": "mcp", "server_label": …}`` entries into the model's function tools.

Pure: the request body and the servers' tool lists in, the body the model sees and a name map
out. A tool keeps its own name; two offered tools that would share a name become
``<server>__<tool>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lowart.errors import InvalidRequest
from lowart.formats.ids import ANTHROPIC

SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class OfferedTool:
    """An MCP tool as the model sees it."""

    exposed: str  # the function name the model calls
    server: str
    tool: str  # its name on the server
    description: str
    input_schema: dict[str, Any]


def mcp_servers_of(body: Mapping[str, Any]) -> list[str]:
    """The server labels the request opts into (in order, without repeats)."""
    labels: list[str] = []
    for entry in body.get("tools") or ():
        if isinstance(entry, dict) and entry.get("type") == "mcp":
            label = entry.get("server_label")
            if not isinstance(label, str) or not label:
                raise InvalidRequest("An mcp tool needs a 'server_label'.", param="tools")
            if label not in labels:
                labels.append(label)
    return labels


def allowed_tools(body: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each server label's ``allowed_tools`` (a list of names, or OpenAI's filter object with
    ``tool_names``), for the servers that narrow their tools; the others offer all of them."""
    narrowed: dict[str, set[str]] = {}
    for entry in body.get("tools") or ():
        if not isinstance(entry, dict) or entry.get("type") != "mcp":
            continue
        allowed = entry.get("allowed_tools")
        if isinstance(allowed, dict):
            allowed = allowed.get("tool_names")
        if isinstance(allowed, list):
            names = {name for name in allowed if isinstance(name, str)}
            narrowed[entry["server_label"]] = narrowed.get(entry["server_label"], names) & names
    return narrowed


def approval_rules(body: Mapping[str, Any]) -> dict[str, Any]:
    """Each server label's ``require_approval``, as the request set it."""
    return {
        entry["server_label"]: entry["require_approval"]
        for entry in body.get("tools") or ()
        if isinstance(entry, dict) and entry.get("type") == "mcp" and "require_approval" in entry
    }


def _client_names(body: Mapping[str, Any]) -> list[str]:
    names = []
    for entry in body.get("tools") or ():
        if not isinstance(entry, dict) or entry.get("type") == "mcp":
            continue
        function = entry.get("function")
        name = function.get("name") if isinstance(function, dict) else entry.get("name")
        if isinstance(name, str):
            names.append(name)
    return names


def offered_tools(
    body: Mapping[str, Any], catalog: Mapping[str, Sequence[tuple[str, str, dict[str, Any]]]]
) -> list[OfferedTool]:
    """Each server's tools (``(name, description, schema)``), named for the model."""
    counts = Counter(_client_names(body))
    for tools in catalog.values():
        counts.update(name for name, _, _ in tools)
    return [
        OfferedTool(
            exposed=name if counts[name] == 1 else f"{server}{SEPARATOR}{name}",
            server=server,
            tool=name,
            description=description,
            input_schema=schema,
        )
        for server, tools in catalog.items()
        for name, description, schema in tools
    ]


def model_body(body: Mapping[str, Any], offered: Sequence[OfferedTool], fmt: str) -> dict[str, Any]:
    """The body without its mcp entries, with the offered tools in the caller's format."""
    tools = [
        t for t in body.get("tools") or () if not (isinstance(t, dict) and t.get("type") == "mcp")
    ]
    for tool in offered:
        if fmt == ANTHROPIC:
            tools.append(
                {
                    "name": tool.exposed,
                    "description": tool.description,
                    "input_schema": tool.input_schema,
                }
            )
        else:
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.exposed,
                        "description": tool.description,
                        "parameters": tool.input_schema,
                    },
                }
            )
    out = {k: v for k, v in body.items() if k not in ("tools", "stream", "stream_options", "async")}
    if tools:
        out["tools"] = tools
    return out
