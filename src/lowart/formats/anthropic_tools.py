"""Tools between the OpenAI and Anthropic shapes: names both APIs accept (shortened both ways
per request) and tool definitions and choices translated either way. Pure, no I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Final

from lowart.errors import InvalidRequest
from lowart.formats.json_values import get

MAX_TOOL_NAME: Final = 64
_NAME_HEAD: Final = 55  # 55 + "_" + 8 hex digits = 64, litellm's rule
_VALID_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NOT_NAME_CHAR: Final = re.compile(r"[^a-zA-Z0-9_-]")


def shorten_tool_name(name: str) -> str:
    """A name both APIs accept (``^[a-zA-Z0-9_-]{1,64}$``); valid names come back unchanged.

    Others keep their first 55 characters (invalid ones replaced by ``_``) plus ``_`` and 8 hex
    digits of the full name's sha256, so distinct names stay distinct.
    """
    if _VALID_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return _NOT_NAME_CHAR.sub("_", name)[:_NAME_HEAD] + "_" + digest


class ToolNames:
    """The tool-name mapping of one request, both ways: original ↔ shortened."""

    __slots__ = ("_original", "_short")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._short: dict[str, str] = {}
        self._original: dict[str, str] = {}
        for name in names:
            short = shorten_tool_name(name)
            self._short[name] = short
            self._original.setdefault(short, name)

    @classmethod
    def from_tools(cls, tools: object) -> ToolNames:
        """The mapping for a request's ``tools``, in OpenAI or Anthropic shape (others skipped)."""
        names: list[str] = []
        for tool in tools if isinstance(tools, list) else ():
            if not isinstance(tool, dict):
                continue
            function = tool.get("function")
            name = function.get("name") if isinstance(function, dict) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
        return cls(names)

    def short(self, name: str) -> str:
        """The name to send upstream."""
        return self._short.get(name) or shorten_tool_name(name)

    def original(self, name: str) -> str:
        """The caller's name for one the upstream used; unknown names come back unchanged."""
        return self._original.get(name, name)


def _tool_list(body: Mapping[str, object]) -> list[object]:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    return tools or []


def _tool_fields(name: object, description: object, param: str) -> dict[str, object]:
    if not isinstance(name, str):
        raise InvalidRequest("tools need a name", param=param)
    fields: dict[str, object] = {"name": name}
    if isinstance(description, str):
        fields["description"] = description
    return fields


def _schema(value: object) -> object:
    return value if isinstance(value, dict) else {"type": "object", "properties": {}}


def tools_to_anthropic(body: Mapping[str, object], names: ToolNames) -> dict[str, object]:
    """Anthropic ``tools``/``tool_choice`` for an OpenAI body's tools, tool_choice and
    parallel_tool_calls; names go through ``names.short``."""
    tools = _tool_list(body)
    if not tools:  # without tools, Anthropic refuses a tool_choice
        return {}
    converted = []
    for i, tool in enumerate(tools):
        function = get(tool, "function")
        if get(tool, "type") not in (None, "function") or not isinstance(function, dict):
            raise InvalidRequest("only function tools are supported", param=f"tools[{i}]")
        fields = _tool_fields(function.get("name"), function.get("description"), f"tools[{i}]")
        fields["name"] = names.short(str(fields["name"]))
        converted.append(fields | {"input_schema": _schema(function.get("parameters"))})
    out: dict[str, object] = {"tools": converted}
    choice = _anthropic_tool_choice(body.get("tool_choice"), names)
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _anthropic_tool_choice(choice: object, names: ToolNames) -> dict[str, object] | None:
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if choice is None:
        return None
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}
    name = get(get(choice, "function"), "name")
    if get(choice, "type") == "function" and isinstance(name, str):
        return {"type": "tool", "name": names.short(name)}
    raise InvalidRequest("unsupported tool_choice", param="tool_choice")


def tools_to_openai(body: Mapping[str, object], names: ToolNames) -> dict[str, object]:
    """OpenAI ``tools``/``tool_choice``/``parallel_tool_calls`` for an Anthropic body.

    Server tools (a ``type`` other than ``custom``) have no Chat Completions equivalent.
    """
    tools: list[object] = []
    for i, tool in enumerate(_tool_list(body)):
        kind = get(tool, "type")
        if kind not in (None, "custom"):
            raise InvalidRequest(f"server tool {kind!r} is not supported here", param=f"tools[{i}]")
        function = _tool_fields(get(tool, "name"), get(tool, "description"), f"tools[{i}]")
        function["name"] = names.short(str(function["name"]))
        function["parameters"] = _schema(get(tool, "input_schema"))
        tools.append({"type": "function", "function": function})
    if not tools:
        return {}
    out: dict[str, object] = {"tools": tools}
    choice = body.get("tool_choice")
    kind, name = get(choice, "type"), get(choice, "name")
    simple = {"auto": "auto", "any": "required", "none": "none"}
    if isinstance(kind, str) and kind in simple:
        out["tool_choice"] = simple[kind]
    elif kind == "tool" and isinstance(name, str):
        out["tool_choice"] = {"type": "function", "function": {"name": names.short(name)}}
    elif choice is not None:
        raise InvalidRequest("unsupported tool_choice", param="tool_choice")
    if get(choice, "disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out
