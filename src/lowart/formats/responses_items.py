"""The items of a Responses API conversation (``input``, and the output items of earlier turns):
their checks, their normal form for storage, and their translation to chat messages.

Pure, no I/O. The shapes are the ``openai`` SDK's ``ResponseInputItemParam``; the handling of
each kind is the field table of docs/api.md, "Responses".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from lowart.errors import InvalidRequest
from lowart.formats.json_values import get, list_of, obj, string

ROLES = frozenset({"user", "system", "developer", "assistant"})
IMAGE_DETAILS = frozenset({"low", "high", "auto", "original"})
CHAT_IMAGE_DETAILS = frozenset({"low", "high", "auto"})
TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
WITH_STATUS = frozenset({"message", "function_call", "function_call_output"})
# The id prefix of an item the caller sent without one (the others' ids are required).
ID_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "mcp_approval_response": "mcpa",
}
# The string fields each kind of item must carry.
_REQUIRED = {
    "message": (),
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id",),
    "reasoning": (),
    "mcp_list_tools": ("id", "server_label"),
    "mcp_approval_request": ("id", "server_label", "name", "arguments"),
    "mcp_call": ("id", "server_label", "name", "arguments"),
    "mcp_approval_response": ("approval_request_id",),
}

Item = dict[str, Any]


def new_id(prefix: str) -> str:
    """A fresh item or response id, ``<prefix>_`` and 48 hex digits, as OpenAI's look."""
    return f"{prefix}_{secrets.token_hex(24)}"


def item_kind(item: Mapping[str, object]) -> object:
    """An item's type; one without a type but with a role is a message (``EasyInputMessage``)."""
    kind = item.get("type")
    return "message" if kind is None and "role" in item else kind


def check_item(item: object, param: str) -> Item:
    """The item, checked: refuse one out of shape, or of a kind the gateway does not take."""
    if not isinstance(item, dict):
        raise InvalidRequest("Each input item must be an object.", param=param)
    fields: Item = item
    kind = item_kind(fields)
    if not isinstance(kind, str) or kind not in _REQUIRED:
        raise InvalidRequest(
            f"Input items of type {kind!r} are not supported by this gateway.", param=param
        )
    for name in ("id", *_REQUIRED[kind]):
        if name in _REQUIRED[kind] or fields.get(name) is not None:
            string(fields.get(name), f"{param}.{name}", f"'{name}'")
    _EXTRA_CHECKS.get(kind, _nothing)(fields, param)
    return fields


def _nothing(item: Mapping[str, object], param: str) -> None:
    return None


def _check_message(item: Mapping[str, object], param: str) -> None:
    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        roles = ", ".join(sorted(ROLES))
        raise InvalidRequest(f"A message's 'role' must be one of {roles}.", param=f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            "A message's 'content' must be a string or an array of parts.", param=f"{param}.content"
        )
    for index, part in enumerate(content):
        _check_part(part, f"{param}.content[{index}]", role)


def _check_part(part: object, param: str, role: str) -> None:
    kind = get(part, "type")
    fields = obj(part, param, "Each content part")
    if isinstance(kind, str) and kind in TEXT_PARTS:
        string(fields.get(TEXT_PARTS[kind]), f"{param}.{TEXT_PARTS[kind]}", "The part's text")
    elif kind == "input_image":
        _check_image(fields, param, role)
    else:
        raise InvalidRequest(
            f"Content parts of type {kind!r} are not supported by this gateway.",
            param=f"{param}.type",
        )


def _check_image(part: Mapping[str, object], param: str, role: str) -> None:
    if part.get("file_id") is not None:
        raise InvalidRequest(
            "Images by 'file_id' are not supported: send an 'image_url'.", param=f"{param}.file_id"
        )
    if role != "user":
        raise InvalidRequest("Images are taken in user messages only.", param=param)
    string(part.get("image_url"), f"{param}.image_url", "'image_url'")
    detail = part.get("detail")
    if detail is not None and (not isinstance(detail, str) or detail not in IMAGE_DETAILS):
        details = ", ".join(sorted(IMAGE_DETAILS))
        raise InvalidRequest(f"'detail' must be one of {details}.", param=f"{param}.detail")


def _check_output(item: Mapping[str, object], param: str) -> None:
    output_text(item.get("output"), f"{param}.output")


def output_text(output: object, param: str) -> str:
    """A ``function_call_output``'s output as text: a string, or its text parts joined."""
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise InvalidRequest(
            "A function call's output must be a string or text parts.", param=param
        )
    texts = []
    for index, part in enumerate(output):
        if get(part, "type") != "input_text":
            raise InvalidRequest(
                "A function call's output must be a string or text parts.",
                param=f"{param}[{index}]",
            )
        texts.append(string(get(part, "text"), f"{param}[{index}].text", "The part's text"))
    return "".join(texts)


def _check_tools_list(item: Mapping[str, object], param: str) -> None:
    for index, tool in enumerate(list_of(item.get("tools"), f"{param}.tools")):
        string(get(tool, "name"), f"{param}.tools[{index}].name", "A listed tool's 'name'")


def _check_approval(item: Mapping[str, object], param: str) -> None:
    if not isinstance(item.get("approve"), bool):
        raise InvalidRequest("'approve' must be a boolean.", param=f"{param}.approve")
    if item.get("reason") is not None:
        string(item.get("reason"), f"{param}.reason", "'reason'")


_EXTRA_CHECKS: dict[str, Callable[[Mapping[str, object], str], None]] = {
    "message": _check_message,
    "function_call_output": _check_output,
    "mcp_list_tools": _check_tools_list,
    "mcp_approval_response": _check_approval,
}


def normalized(value: object) -> list[Item]:
    """The request's ``input`` as checked items in their stored form: a string is one user
    message; a message has ``type``, ``status`` and content parts; every item has an ``id``."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    items: list[Item] = []
    for index, item in enumerate(list_of(value, "input")):
        items.append(_normal(check_item(item, f"input[{index}]")))
    return items


def _normal(item: Item) -> Item:
    kind = item_kind(item)
    out = {"type": kind, **item}
    if kind in WITH_STATUS:
        out.setdefault("status", "completed")
    if kind == "message":
        content = out.get("content")
        if isinstance(content, str):
            part = "output_text" if out["role"] == "assistant" else "input_text"
            extra: Item = {"annotations": []} if part == "output_text" else {}
            out["content"] = [{"type": part, "text": content, **extra}]
    if out.get("id") is None and isinstance(kind, str):
        out["id"] = new_id(ID_PREFIXES.get(kind, "item"))
    return out


def chat_messages(items: list[object]) -> list[dict[str, Any]]:
    """Chat messages for a whole conversation's items: function calls join the assistant message
    before them, outputs become tool messages, reasoning and ``mcp_*`` items are dropped."""
    messages: list[dict[str, Any]] = []
    for index, value in enumerate(items):
        item = check_item(value, f"input[{index}]")
        kind = item_kind(item)
        if kind == "message":
            messages.append(_chat_message(item))
        elif kind == "function_call":
            _add_call(messages, item)
        elif kind == "function_call_output":
            text = output_text(item.get("output"), f"input[{index}].output")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
    return messages


def _chat_message(item: Item) -> dict[str, Any]:
    role = "system" if item["role"] == "developer" else item["role"]
    content = item["content"]
    if isinstance(content, list):
        parts = [_chat_part(part) for part in content]
        if len(parts) == 1 and parts[0]["type"] == "text":
            content = parts[0]["text"]
        else:
            content = parts or ""
    return {"role": role, "content": content}


def _chat_part(part: Item) -> dict[str, Any]:
    kind = part["type"]
    if kind in TEXT_PARTS:
        return {"type": "text", "text": part[TEXT_PARTS[kind]]}
    image: dict[str, Any] = {"url": part["image_url"]}
    if part.get("detail") in CHAT_IMAGE_DETAILS:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _add_call(messages: list[dict[str, Any]], item: Item) -> None:
    """A function call joins the assistant message just before it, or starts one."""
    function = {"name": item["name"], "arguments": item["arguments"]}
    call = {"id": item["call_id"], "type": "function", "function": function}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
