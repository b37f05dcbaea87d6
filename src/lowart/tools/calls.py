"""Tool calls in a model's answer, and the messages that carry calls and results back.

Pure, in both wire formats: ``openai`` (``tool_calls`` on the assistant message, ``tool``
messages for results) and ``anthropic`` (``tool_use`` blocks, ``tool_result`` blocks in a user
turn).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from lowart.formats.ids import ANTHROPIC


@dataclass(frozen=True, slots=True)
class Call:
    """One call the model asked for."""

    id: str
    name: str  # the exposed function name
    arguments: str  # JSON text

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.arguments.encode()).hexdigest()

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object ({} when empty; a ValueError when not a JSON object)."""
        if not self.arguments.strip():
            return {}
        try:
            value = msgspec.json.decode(self.arguments)
        except msgspec.DecodeError as exc:
            raise ValueError("the arguments are not JSON") from exc
        if not isinstance(value, dict):
            raise ValueError("the arguments are not a JSON object")
        return value


def _message(response: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return message if isinstance(message, Mapping) else {}


def calls_of(response: Mapping[str, Any], fmt: str) -> list[Call]:
    """The tool calls of an answer, in order."""
    if fmt == ANTHROPIC:
        return [
            Call(
                str(b.get("id")),
                str(b.get("name")),
                msgspec.json.encode(b.get("input") or {}).decode(),
            )
            for b in response.get("content") or ()
            if isinstance(b, Mapping) and b.get("type") == "tool_use"
        ]
    calls = []
    for call in _message(response).get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            calls.append(
                Call(
                    str(call.get("id")),
                    str(function.get("name")),
                    str(function.get("arguments") or ""),
                )
            )
    return calls


def assistant_turn(response: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """The answer as the assistant message of the conversation's next round."""
    if fmt == ANTHROPIC:
        return {"role": "assistant", "content": list(response.get("content") or [])}
    message = _message(response)
    return {
        "role": "assistant",
        "content": message.get("content"),
        "tool_calls": list(message.get("tool_calls") or []),
    }


def result_turns(results: Sequence[tuple[str, str]], fmt: str) -> list[dict[str, Any]]:
    """The tool results (call id, text) as the messages that follow the assistant's calls."""
    if fmt == ANTHROPIC:
        return [
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call_id, "content": text}
                    for call_id, text in results
                ],
            }
        ]
    return [{"role": "tool", "tool_call_id": call_id, "content": text} for call_id, text in results]


def only_calls(response: Mapping[str, Any], keep: set[str], fmt: str) -> dict[str, Any]:
    """The answer showing only the calls in ``keep`` (the ones awaiting confirmation)."""
    out = dict(response)
    if fmt == ANTHROPIC:
        out["content"] = [
            b
            for b in response.get("content") or ()
            if not (
                isinstance(b, Mapping) and b.get("type") == "tool_use" and b.get("id") not in keep
            )
        ]
        return out
    choices = [dict(c) for c in response.get("choices") or ()]
    if choices:
        message = dict(choices[0].get("message") or {})
        message["tool_calls"] = [c for c in message.get("tool_calls") or () if c.get("id") in keep]
        choices[0]["message"] = message
        choices[0]["finish_reason"] = "tool_calls"
        out["choices"] = choices
    return out
