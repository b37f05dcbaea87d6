"""The parts of a Responses API ``response`` object: its output items, its usage and the object
itself echoing the request, as the ``openai`` SDK's ``Response`` type requires them.

Pure, no I/O: ids and times come from the caller.
"""

from __future__ import annotations

from typing import Any

from lowart.formats.json_values import get
from lowart.formats.openai import sane_tokens

Json = dict[str, Any]
# A chat finish reason that stops short: the response is incomplete, for this reason.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# The events that end a stream, by the response's final status (others end as failed).
CLOSING = {"completed": "response.completed", "incomplete": "response.incomplete"}


def status_of(finish_reason: object) -> tuple[str, str | None]:
    """The response status for a chat finish reason, and the incomplete reason if any."""
    reason = INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", reason) if reason else ("completed", None)


def text_part(text: str) -> Json:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> Json:
    """A ``refusal`` content part."""
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, parts: list[Json], status: str = "completed") -> Json:
    """An assistant ``message`` output item."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> Json:
    """A ``function_call`` output item."""
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def reasoning_item(item_id: str, text: str, status: str = "completed") -> Json:
    """A ``reasoning`` output item holding the vendor's reasoning text (no summary)."""
    content = [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "status": status, "summary": [], "content": content}


def usage_object(chat_usage: object) -> Json | None:
    """A Responses ``usage`` for a chat ``usage``; None unless both main counts are valid."""
    prompt = sane_tokens(get(chat_usage, "prompt_tokens"))
    completion = sane_tokens(get(chat_usage, "completion_tokens"))
    if prompt is None or completion is None:
        return None
    cached = sane_tokens(get(get(chat_usage, "prompt_tokens_details"), "cached_tokens")) or 0
    details = get(chat_usage, "completion_tokens_details")
    reasoning = sane_tokens(get(details, "reasoning_tokens")) or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": min(cached, prompt), "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": min(reasoning, completion)},
        "total_tokens": prompt + completion,
    }


def response_object(
    request: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    output: list[Json],
    status: str,
    usage: Json | None = None,
    incomplete_reason: str | None = None,
    error: Json | None = None,
) -> Json:
    """A ``response`` object with this output, echoing the request's settings (OpenAI's
    defaults for those it leaves out). ``output_text`` is not in it: the SDK computes it.
    A failed one carries ``error`` (``{"code", "message"}``, the codes of the SDK's
    ``ResponseError``, such as ``server_error`` or ``rate_limit_exceeded``)."""
    response: Json = {"id": response_id, "object": "response", "created_at": created_at}
    response |= {"status": status, "background": request.get("background") is True}
    response |= {"error": error, "incomplete_details": None, "output": output, "usage": usage}
    if incomplete_reason is not None:
        response["incomplete_details"] = {"reason": incomplete_reason}
    return response | _echoed(request)


_ECHOED = (
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "safety_identifier",
    "user",
)


def _echoed(request: dict[str, Any]) -> Json:
    """The request's settings as a response repeats them."""
    return {name: request.get(name) for name in _ECHOED} | {
        "metadata": request.get("metadata") or {},
        "model": request.get("model"),
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "reasoning": _reasoning(request.get("reasoning")),
        "store": request.get("store") is not False,
        "temperature": _default(request.get("temperature"), 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": _default(request.get("tool_choice"), "auto"),
        "tools": [_echo_tool(tool) for tool in _listed(request.get("tools"))],
        "top_p": _default(request.get("top_p"), 1.0),
        "truncation": "disabled",
    }


def _listed(value: object) -> list[Json]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _default(value: object, default: object) -> object:
    return default if value is None else value


def _reasoning(reasoning: object) -> Json:
    return {"effort": get(reasoning, "effort"), "summary": get(reasoning, "summary")}


def _echo_tool(tool: Json) -> Json:
    """A request's tool as the response lists it: a function tool with all its keys."""
    if tool.get("type") != "function":
        return tool
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }
