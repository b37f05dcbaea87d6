"""A Responses API request (``POST /v1/responses``): its checks, its input items, and the Chat
Completions request that asks a chat vendor the same question.

Pure, no I/O. Which fields are translated, ignored or refused is ``FIELDS`` (the table of
docs/api.md, "Responses"); a field not listed there is ignored.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lowart.errors import InvalidRequest
from lowart.formats.json_values import check_depth, get, list_of, obj, string
from lowart.formats.responses_fields import FIELDS, HOSTED_TOOLS, MCP_REMOTE_KEYS
from lowart.formats.responses_items import chat_messages, normalized

__all__ = ["FIELDS", "check_responses", "input_items", "responses_to_chat"]

MAX_TOKENS_CAP = 10_000_000
MAX_DEPTH = 64  # as chat's tool schemas and response formats (docs/reliability.md, B3)
MAX_METADATA = 16  # pairs, and their sizes, as OpenAI's
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
SUMMARIES = frozenset({"auto", "concise", "detailed"})
VERBOSITIES = frozenset({"low", "medium", "high"})
TOOL_CHOICES = frozenset({"auto", "none", "required"})
RESPONSE_ID = re.compile(r"resp_[A-Za-z0-9_-]{1,200}")
_REFUSED = {
    "prompt": "Stored prompt templates ('prompt') are not supported by this gateway.",
    "conversation": "'conversation' is not supported: continue with 'previous_response_id'.",
    "context_management": "'context_management' (compaction) is not supported by this gateway.",
    "moderation": "'moderation' is not supported by this gateway.",
}
_NESTED = ("input", "tools", "text", "reasoning", "tool_choice", "metadata", "include")


def check_responses(body: dict[str, Any]) -> None:
    """Refuse a ``POST /v1/responses`` body out of shape, or asking what the gateway refuses."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    for name in _NESTED:
        check_depth(body.get(name), name, MAX_DEPTH)
    _check_refused(body)
    _check_numbers(body)
    _check_flags(body)
    if body.get("input") is None and body.get("previous_response_id") is None:
        raise InvalidRequest("'input' is required.", param="input")
    normalized(body.get("input") or [])
    check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    _check_text(body.get("text"))
    _check_reasoning(body.get("reasoning"))
    _check_metadata(body.get("metadata"))
    for name in ("instructions", "user", "safety_identifier", "prompt_cache_key"):
        if body.get(name) is not None:
            string(body[name], name, f"'{name}'")
    for index, value in enumerate(list_of(body.get("include"), "include")):
        string(value, f"include[{index}]", "Each 'include' entry")


def _check_refused(body: dict[str, Any]) -> None:
    for name, message in _REFUSED.items():
        if body.get(name) is not None:
            raise InvalidRequest(message, param=name)
    truncation = body.get("truncation")
    if truncation == "auto":
        raise InvalidRequest(
            "'truncation: auto' is not supported: the gateway cannot truncate.", param="truncation"
        )
    if truncation is not None and truncation != "disabled":
        raise InvalidRequest("'truncation' must be 'disabled' or 'auto'.", param="truncation")
    tools = body.get("tools")
    with_mcp = isinstance(tools, list) and any(get(tool, "type") == "mcp" for tool in tools)
    if with_mcp and body.get("max_tool_calls") is not None:
        raise InvalidRequest(
            "'max_tool_calls' is not supported with 'mcp' tools.", param="max_tool_calls"
        )


def _check_numbers(body: dict[str, Any]) -> None:
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        if value is not None and not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and low <= value <= high
        ):
            raise InvalidRequest(f"'{name}' must be a number from {low} to {high}.", param=name)
    for name, low, cap in (
        ("max_output_tokens", 1, MAX_TOKENS_CAP),
        ("top_logprobs", 0, 20),
        ("max_tool_calls", 0, MAX_TOKENS_CAP),
    ):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not low <= value <= cap
        ):
            raise InvalidRequest(f"'{name}' must be an integer from {low} to {cap}.", param=name)


def _check_flags(body: dict[str, Any]) -> None:
    for name in ("stream", "background", "store", "parallel_tool_calls"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise InvalidRequest(f"'{name}' must be a boolean.", param=name)
    if body.get("background") is True and body.get("store") is False:
        raise InvalidRequest(
            "'background' needs the response stored: not 'store: false'.", param="background"
        )
    previous = body.get("previous_response_id")
    if previous is not None and not (isinstance(previous, str) and RESPONSE_ID.fullmatch(previous)):
        raise InvalidRequest(
            "'previous_response_id' must be a response id ('resp_…').", param="previous_response_id"
        )
    if body.get("stream_options") is not None:
        obj(body["stream_options"], "stream_options", "'stream_options'")


def check_tools(tools: object) -> None:
    """Function tools and ``mcp`` tools naming a registered server; hosted tools are refused."""
    for index, tool in enumerate(list_of(tools, "tools")):
        param = f"tools[{index}]"
        kind = get(tool, "type")
        if kind == "function":
            _check_function(obj(tool, param, "Each tool"), param)
        elif kind == "mcp":
            _check_mcp(obj(tool, param, "Each tool"), param)
        elif isinstance(kind, str) and kind in HOSTED_TOOLS:
            raise InvalidRequest(
                f"The hosted tool '{kind}' is not supported by this gateway.", param=f"{param}.type"
            )
        else:
            raise InvalidRequest(
                f"Tools of type {kind!r} are not supported by this gateway.", param=f"{param}.type"
            )


def _check_function(tool: Any, param: str) -> None:
    name = string(tool.get("name"), f"{param}.name", "A function tool's 'name'")
    if not name:
        raise InvalidRequest("A function tool's 'name' cannot be empty.", param=f"{param}.name")
    if tool.get("parameters") is not None:
        obj(tool["parameters"], f"{param}.parameters", "'parameters'")
    if tool.get("description") is not None:
        string(tool["description"], f"{param}.description", "'description'")
    if tool.get("strict") is not None and not isinstance(tool["strict"], bool):
        raise InvalidRequest("'strict' must be a boolean.", param=f"{param}.strict")


def _check_mcp(tool: Any, param: str) -> None:
    string(tool.get("server_label"), f"{param}.server_label", "An mcp tool's 'server_label'")
    for key in MCP_REMOTE_KEYS:
        if tool.get(key) is not None:
            raise InvalidRequest(
                f"An mcp tool's '{key}' is refused: the gateway runs only the MCP servers an "
                "admin registered, named by 'server_label'.",
                param=f"{param}.{key}",
            )
    allowed = tool.get("allowed_tools")
    names = get(allowed, "tool_names") if isinstance(allowed, dict) else allowed
    for index, name in enumerate(list_of(names, f"{param}.allowed_tools")):
        string(name, f"{param}.allowed_tools[{index}]", "An allowed tool's name")
    approval = tool.get("require_approval")
    if (
        approval is not None
        and approval not in ("always", "never")
        and not isinstance(approval, dict)
    ):
        raise InvalidRequest(
            "'require_approval' must be 'always', 'never' or an object.",
            param=f"{param}.require_approval",
        )


def _check_tool_choice(choice: object) -> None:
    if choice is None or (isinstance(choice, str) and choice in TOOL_CHOICES):
        return
    if get(choice, "type") == "function":
        string(get(choice, "name"), "tool_choice.name", "The chosen function's 'name'")
        return
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or a function: other choices are "
        "not supported by this gateway.",
        param="tool_choice",
    )


def _check_text(text: object) -> None:
    if text is None:
        return
    fields = obj(text, "text", "'text'")
    verbosity = fields.get("verbosity")
    if verbosity is not None and verbosity not in VERBOSITIES:
        raise InvalidRequest("'verbosity' must be low, medium or high.", param="text.verbosity")
    form = fields.get("format")
    kind = get(form, "type")
    if form is None or kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise InvalidRequest(
            "'text.format.type' must be text, json_object or json_schema.", param="text.format.type"
        )
    string(get(form, "name"), "text.format.name", "The JSON schema's 'name'")
    obj(get(form, "schema"), "text.format.schema", "The JSON schema's 'schema'")
    if get(form, "strict") is not None and not isinstance(get(form, "strict"), bool):
        raise InvalidRequest("'strict' must be a boolean.", param="text.format.strict")
    if get(form, "description") is not None:
        string(get(form, "description"), "text.format.description", "'description'")


def _check_reasoning(reasoning: object) -> None:
    if reasoning is None:
        return
    fields = obj(reasoning, "reasoning", "'reasoning'")
    effort = fields.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        efforts = ", ".join(sorted(EFFORTS))
        raise InvalidRequest(f"'effort' must be one of {efforts}.", param="reasoning.effort")
    for name in ("summary", "generate_summary"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or value not in SUMMARIES):
            raise InvalidRequest(
                f"'{name}' must be auto, concise or detailed.", param=f"reasoning.{name}"
            )


def _check_metadata(metadata: object) -> None:
    if metadata is None:
        return
    fields = obj(metadata, "metadata", "'metadata'")
    if len(fields) > MAX_METADATA:
        raise InvalidRequest(f"'metadata' holds at most {MAX_METADATA} pairs.", param="metadata")
    for key, value in fields.items():
        if (
            len(key) > MAX_METADATA_KEY
            or not isinstance(value, str)
            or (len(value) > MAX_METADATA_VALUE)
        ):
            raise InvalidRequest(
                f"'metadata' keys are strings of at most {MAX_METADATA_KEY} characters, its "
                f"values strings of at most {MAX_METADATA_VALUE}.",
                param=f"metadata.{key[:MAX_METADATA_KEY]}",
            )


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's ``input`` as items, for storage: a string is one user message with an
    ``input_text`` part, a message without ``type`` gets one, and each item gets an ``id``."""
    return normalized(body.get("input") or [])


def responses_to_chat(body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The Chat Completions body asking the same as this request, for the whole conversation's
    ``items`` (earlier turns' input and output items first, then this request's)."""
    check_responses(body)
    messages = chat_messages(list(items))
    instructions = body.get("instructions")
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise InvalidRequest("The conversation has no messages to answer.", param="input")
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in ("temperature", "top_p", "parallel_tool_calls", "prompt_cache_key"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if get(body.get("reasoning"), "effort") is not None:
        chat["reasoning_effort"] = body["reasoning"]["effort"]
    chat |= _chat_text(body.get("text"))
    chat |= _chat_tools(body)
    if body.get("stream"):
        chat |= {"stream": True, "stream_options": {"include_usage": True}}
    return chat


def _chat_text(text: object) -> dict[str, Any]:
    """``response_format`` and ``verbosity`` for the request's ``text``."""
    out: dict[str, Any] = {}
    if get(text, "verbosity") is not None:
        out["verbosity"] = get(text, "verbosity")
    form = get(text, "format")
    if get(form, "type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif isinstance(form, dict) and form.get("type") == "json_schema":
        schema = {"name": form["name"], "schema": form["schema"]}
        for key in ("strict", "description"):
            if form.get(key) is not None:
                schema[key] = form[key]
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    return out


def _chat_tools(body: dict[str, Any]) -> dict[str, Any]:
    """Chat's ``tools`` and ``tool_choice``; ``mcp`` tools pass for the gateway's tool loop."""
    tools = []
    for tool in body.get("tools") or ():
        if tool["type"] == "mcp":
            kept = ("server_label", "allowed_tools", "require_approval")
            tools.append({"type": "mcp"} | {k: tool[k] for k in kept if tool.get(k) is not None})
            continue
        function = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        tools.append({"type": "function", "function": function})
    out: dict[str, Any] = {"tools": tools} if tools else {}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        out["tool_choice"] = choice
    return out
