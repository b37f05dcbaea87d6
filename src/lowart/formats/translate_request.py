"""Request bodies translated both ways between OpenAI Chat Completions and Anthropic Messages.

Pure code: dicts in, dicts out (docs/api.md, "Anthropic Messages"). Both directions copy an
allowlist of fields and drop the rest; input the target cannot express raises ``InvalidRequest``.

OpenAI → Anthropic: leading system/developer messages become the top-level ``system`` (text
blocks when any part carries ``cache_control``, else one string). A system message in the middle
of the conversation becomes a user text block ``"[system] ..."`` in its place: hoisting it would
move it before turns it was meant to follow, and ``mid_conv_system`` is version-dependent. Tool
arguments that are not a JSON object are wrapped (``{"value": ...}``, or ``{"raw": "<text>"}``
when not JSON). ``n`` > 1 and ``logprobs`` are refused; ``reasoning_effort`` becomes extended
``thinking`` with a token budget by effort (below ``max_tokens``, at least Anthropic's 1,024; none
when ``max_tokens`` leaves no room), and then ``temperature`` and ``top_p`` are dropped, as
Anthropic requires; ``strict``, ``seed``, penalties and every other field are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from lowart.errors import InvalidRequest
from lowart.formats.anthropic import clean_id, document_block, image_block, openai_part, tool_input
from lowart.formats.anthropic_tools import ToolNames, tools_to_anthropic, tools_to_openai
from lowart.formats.json_values import among, get, list_of, number, obj, string

Body = Mapping[str, object]
Block = dict[str, object]

# Extended thinking's token budget by OpenAI's reasoning effort ("none": no thinking).
THINKING_BUDGETS: Final = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 32768,
}
MIN_THINKING_BUDGET: Final = 1024
JSON_INSTRUCTION: Final = "Respond only with a single valid JSON object, with no other text."
MAX_OPENAI_STOP: Final = 4
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})
_THINKING: Final = frozenset({"thinking", "redacted_thinking"})


def _messages(body: Body) -> list[Body]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages must be a list of message objects", param="messages")
    return messages


# ---------------------------------------------------------------- OpenAI → Anthropic


def openai_to_anthropic(
    body: Body, *, upstream_model: str, default_max_tokens: int = 4096
) -> dict[str, object]:
    """An Anthropic Messages body for an OpenAI Chat Completions body (see the module doc)."""
    if body.get("n") not in (None, 1):
        raise InvalidRequest("n must be 1: this model returns a single choice", param="n")
    if body.get("logprobs") is True:
        raise InvalidRequest("logprobs are not available for this model", param="logprobs")
    names = ToolNames.from_tools(body.get("tools"))
    messages = _messages(body)
    lead = next(
        (i for i, m in enumerate(messages) if not among(m.get("role"), _SYSTEM_ROLES)), None
    )
    lead = len(messages) if lead is None else lead
    instruction, output_config = _json_mode(body.get("response_format"))
    out: dict[str, object] = {"model": upstream_model}
    out["max_tokens"] = _max_tokens(body, default_max_tokens)
    system = _system(messages[:lead], instruction)
    if system:
        out["system"] = system
    out["messages"] = _turns(messages, lead, names)
    _sampling(body, out)
    thinking = _thinking(body.get("reasoning_effort"), out["max_tokens"])
    if thinking is not None:
        out["thinking"] = thinking
        out.pop("temperature", None)
        out.pop("top_p", None)
    out |= tools_to_anthropic(body, names)
    if output_config is not None:
        out["output_config"] = output_config
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    return out


def _max_tokens(body: Body, default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{key} must be a positive integer", param=key)
        return value
    return default


def _texts(content: object, param: str) -> list[tuple[str, object]]:
    """(text, cache_control) of string or text-part content; other parts are refused."""
    if isinstance(content, str):
        return [(content, None)]
    texts: list[tuple[str, object]] = []
    for part in list_of(content, param):
        text = get(part, "text")
        if get(part, "type") != "text" or not isinstance(text, str):
            raise InvalidRequest("this message accepts only text parts", param=param)
        texts.append((text, get(part, "cache_control")))
    return texts


def _text_blocks(pairs: list[tuple[str, object]], prefix: str = "") -> list[Block]:
    """Text blocks, whitespace-only ones dropped (Anthropic refuses them); prefix on the first."""
    blocks: list[Block] = []
    for text, cache_control in pairs:
        if text.strip():
            block: Block = {"type": "text", "text": (prefix if not blocks else "") + text}
            if isinstance(cache_control, dict):
                block["cache_control"] = cache_control
            blocks.append(block)
    return blocks


def _system(leading: list[Body], instruction: str | None) -> str | list[Block] | None:
    pairs = [p for i, m in enumerate(leading) for p in _texts(m.get("content"), f"messages[{i}]")]
    blocks = _text_blocks(pairs + ([(instruction, None)] if instruction else []))
    if not blocks:
        return None
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n\n".join(str(block["text"]) for block in blocks)


def _turns(messages: list[Body], start: int, names: ToolNames) -> list[Block]:
    """Anthropic turns: each message converted, same-role neighbours merged, empties dropped."""
    merged: list[tuple[str, list[Block]]] = []
    for i in range(start, len(messages)):
        role, blocks = _turn(messages[i], names, f"messages[{i}]")
        if blocks and merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        elif blocks:
            merged.append((role, blocks))
    return [{"role": role, "content": _finish_turn(blocks)} for role, blocks in merged]


def _turn(message: Body, names: ToolNames, param: str) -> tuple[str, list[Block]]:
    role = message.get("role")
    content = message.get("content")
    if among(role, _SYSTEM_ROLES):
        return "user", _text_blocks(_texts(content, param), "[system] ")
    if role == "user":
        return "user", _user_blocks(content, param)
    if role == "assistant":
        return "assistant", _assistant_blocks(message, names, param)
    if role == "tool":
        return "user", [_tool_result(message, param)]
    raise InvalidRequest(f"unsupported message role {role!r}", param=f"{param}.role")


def _finish_turn(blocks: list[Block]) -> str | list[Block]:
    """tool_result blocks first (Anthropic requires it); one plain text block becomes a string."""
    blocks.sort(key=lambda block: block.get("type") != "tool_result")
    if len(blocks) == 1 and blocks[0].get("type") == "text" and "cache_control" not in blocks[0]:
        return str(blocks[0]["text"])
    return blocks


def _user_blocks(content: object, param: str) -> list[Block]:
    if isinstance(content, str):
        return _text_blocks([(content, None)])
    parts = list_of(content, param)
    return [block for j, part in enumerate(parts) for block in _user_part(part, f"{param}[{j}]")]


def _user_part(part: object, param: str) -> list[Block]:
    kind = obj(part, param, "a content part").get("type")
    if kind == "text":
        return _text_blocks(_texts([part], param))
    if kind == "image_url":
        image = get(part, "image_url")
        url = get(image, "url") if isinstance(image, dict) else image
        return [image_block(string(url, param, "image_url.url"), param)]
    if kind == "file":
        data = get(get(part, "file"), "file_data")
        return [document_block(string(data, param, "file.file_data"), param)]
    if kind == "input_audio":
        raise InvalidRequest("audio input is not supported by this model", param=param)
    raise InvalidRequest(f"unsupported content part type {kind!r}", param=param)


def _assistant_blocks(message: Body, names: ToolNames, param: str) -> list[Block]:
    content = message.get("content")
    if isinstance(content, list):  # refusal parts are kept as text
        content = [
            {"type": "text", "text": get(part, "refusal")}
            if get(part, "type") == "refusal"
            else part
            for part in content
        ]
    blocks = _text_blocks(_texts(content, param))
    calls = list_of(message.get("tool_calls"), f"{param}.tool_calls")
    return blocks + [_tool_use(c, names, f"{param}.tool_calls[{j}]") for j, c in enumerate(calls)]


def _tool_use(call: object, names: ToolNames, param: str) -> Block:
    function = obj(get(call, "function"), param, "a tool call's function")
    if get(call, "type") not in (None, "function"):
        raise InvalidRequest("only function tool calls are supported", param=param)
    call_id = get(call, "id")
    return {
        "type": "tool_use",
        "id": clean_id(call_id if isinstance(call_id, str) else ""),
        "name": names.short(string(function.get("name"), param, "function.name")),
        "input": tool_input(function.get("arguments")),
    }


def _tool_result(message: Body, param: str) -> Block:
    call_id = string(message.get("tool_call_id"), f"{param}.tool_call_id", "tool_call_id")
    block: Block = {"type": "tool_result", "tool_use_id": clean_id(call_id)}
    text = "\n".join(text for text, _ in _texts(message.get("content"), param))
    if text.strip():
        block["content"] = text
    return block


def _thinking(effort: object, max_tokens: object) -> Block | None:
    """Extended thinking for OpenAI's ``reasoning_effort``, within ``max_tokens``."""
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None or not isinstance(max_tokens, int):
        return None
    budget = min(budget, max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _sampling(body: Body, out: dict[str, object]) -> None:
    temperature = number(body, "temperature")
    if temperature is not None:
        out["temperature"] = min(max(temperature, 0), 1)
    top_p = number(body, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    kept = [s for s in stops if isinstance(s, str) and s.strip()]
    if kept:
        out["stop_sequences"] = kept
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}


def _json_mode(response_format: object) -> tuple[str | None, Block | None]:
    """(system instruction, output_config) for ``response_format``."""
    kind = get(response_format, "type")
    schema = get(get(response_format, "json_schema"), "schema")
    if response_format is None or kind == "text":
        return None, None
    if kind == "json_schema" and isinstance(schema, dict):
        return None, {"format": {"type": "json_schema", "schema": schema}}
    if kind in ("json_object", "json_schema"):
        return JSON_INSTRUCTION, None
    raise InvalidRequest("unsupported response_format", param="response_format")


# ---------------------------------------------------------------- Anthropic → OpenAI


def anthropic_to_openai(body: Body, *, upstream_model: str | None = None) -> dict[str, object]:
    """An OpenAI Chat Completions body for an Anthropic Messages body.

    ``tool_result`` blocks become ``tool`` messages placed before the rest of their user turn
    (text flattened, ``is_error`` as an ``"ERROR: "`` prefix, images and documents moved to the
    following user message). Thinking blocks, ``top_k``, ``thinking`` and ``cache_control`` are
    dropped; server tools are refused. ``max_tokens`` stays ``max_tokens``, the key every
    OpenAI-compatible backend understands; ``stop_sequences`` past the first 4 are dropped.
    """
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise InvalidRequest("max_tokens: a non-negative integer is required", param="max_tokens")
    names = ToolNames.from_tools(body.get("tools"))
    messages = _system_messages(body.get("system"))
    for i, message in enumerate(_messages(body)):
        messages.extend(_openai_messages(message, names, f"messages[{i}]"))
    model = upstream_model or body.get("model")
    out: dict[str, object] = {"model": model} if isinstance(model, str) else {}
    out |= {"messages": messages, "max_tokens": max_tokens}
    _openai_sampling(body, out)
    out |= tools_to_openai(body, names)
    fmt = get(body.get("output_config"), "format")
    schema = get(fmt, "schema")
    if get(fmt, "type") == "json_schema" and isinstance(schema, dict):
        spec = {"name": "output", "schema": schema}
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    if body.get("stream") is True:
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    return out


def _system_messages(system: object) -> list[Block]:
    if system is None:
        return []
    text = "\n\n".join(text for text, _ in _texts(system, "system") if text.strip())
    return [{"role": "system", "content": text}] if text else []


def _openai_messages(message: Body, names: ToolNames, param: str) -> list[Block]:
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise InvalidRequest("role must be 'user' or 'assistant'", param=f"{param}.role")
    if isinstance(content, str):
        return [{"role": role, "content": content}] if content or role == "user" else []
    if not isinstance(content, list):
        raise InvalidRequest("content must be a string or a list", param=f"{param}.content")
    blocks = [obj(block, f"{param}[{j}]", "a content block") for j, block in enumerate(content)]
    if role == "assistant":
        return _assistant_message(blocks, names, param)
    tools: list[Block] = []
    parts: list[Block] = []
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            tool, moved = _tool_message(block, f"{param}[{j}]")
            tools.append(tool)
            parts.extend(moved)
        elif not among(block.get("type"), _THINKING):
            parts.append(openai_part(block, f"{param}[{j}]"))
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_message(blocks: list[Body], names: ToolNames, param: str) -> list[Block]:
    texts: list[str] = []
    calls: list[Block] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(string(block.get("text"), f"{param}[{j}]", "text"))
        elif kind == "tool_use":
            calls.append(_tool_call(block, names, f"{param}[{j}]"))
        elif not among(kind, _THINKING):
            raise InvalidRequest(f"unsupported assistant block type {kind!r}", param=param)
    message: Block = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return [message] if message["content"] or calls else []


def _tool_call(block: Body, names: ToolNames, param: str) -> Block:
    name = names.short(string(block.get("name"), param, "tool_use.name"))
    arguments = msgspec.json.encode(block.get("input") or {}).decode()
    call_id = string(block.get("id"), param, "tool_use.id")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_message(block: Body, param: str) -> tuple[Block, list[Block]]:
    """A ``tool`` message for a tool_result, and the non-text parts OpenAI cannot put there."""
    call_id = string(block.get("tool_use_id"), param, "tool_use_id")
    content = block.get("content")
    items = [{"type": "text", "text": content}] if isinstance(content, str) else content
    texts: list[str] = []
    moved: list[Block] = []
    for item in list_of(items, param):
        if get(item, "type") == "text":
            texts.append(string(get(item, "text"), param, "text"))
        else:
            moved.append(openai_part(obj(item, param, "a content block"), param))
    text = "\n".join(texts)
    text = "ERROR: " + text if block.get("is_error") is True else text
    return {"role": "tool", "tool_call_id": call_id, "content": text}, moved


def _openai_sampling(body: Body, out: dict[str, object]) -> None:
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            out[key] = value
    stops = [s for s in list_of(body.get("stop_sequences"), "stop_sequences") if isinstance(s, str)]
    if stops:
        out["stop"] = stops[:MAX_OPENAI_STOP]
    user = get(body.get("metadata"), "user_id")
    if isinstance(user, str) and user:
        out["user"] = user
