"""OpenAI Chat Completions payload helpers: usage, generated text and error bodies, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from lowart.formats.sse import DONE, encode_event

MAX_TOKENS = 2**31


@dataclass(slots=True)  # per request: frozen ones cost more to build
class Usage:
    """Token counts of one completion. ``cached_tokens`` (read from the vendor's prompt cache)
    and ``cache_write_tokens`` (written to it, Anthropic's ``cache_creation_input_tokens``) are
    parts of ``prompt_tokens``; ``images`` counts the pictures an image model made."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    images: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


def sane_tokens(value: object) -> int | None:
    """A vendor's token count as a usable int: negatives become 0, huge values are capped."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return min(max(value, 0), MAX_TOKENS)


class _UsageOnly(msgspec.Struct):
    usage: object = None


class _UsageChunk(msgspec.Struct):
    usage: object = None
    choices: msgspec.Raw = msgspec.Raw()  # kept raw: only its emptiness matters


class _TextPart(msgspec.Struct):
    text: str | None = None


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int | None = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    content: str | list[_TextPart] | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    message: _Message | None = None
    delta: _Message | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] | None = None


_USAGE_DECODER = msgspec.json.Decoder(_UsageOnly)
_CHUNK_USAGE_DECODER = msgspec.json.Decoder(_UsageChunk)
_COMPLETION_DECODER = msgspec.json.Decoder(_Completion)


def usage_from_body(body: bytes) -> Usage | None:
    """The usage of a ``chat.completion`` body, or None when it reports none."""
    try:
        usage = _USAGE_DECODER.decode(body).usage
    except msgspec.DecodeError:
        return None
    return _usage_of(usage)


def completion_usage(body: bytes) -> Usage | None:
    """Like ``usage_from_body``, but a body that is not a JSON object raises ``ValueError``."""
    try:
        usage = _USAGE_DECODER.decode(body).usage
    except msgspec.DecodeError as exc:
        raise ValueError("not a JSON object") from exc
    return _usage_of(usage)


def carries_usage(data: bytes) -> bool:
    """Whether some ``usage`` key in these bytes (one or more events) is not null, without
    decoding them. OpenAI sends ``"usage":null`` in every chunk of a stream that asks for it."""
    if b'"usage"' not in data:
        return False
    nulls = data.count(b'"usage":null') + data.count(b'"usage": null')
    return data.count(b'"usage"') != nulls


def usage_from_chunk(data: bytes) -> tuple[Usage | None, bool]:
    """A chunk's usage, and whether its ``choices`` is empty (checked only when usage is there)."""
    if not carries_usage(data):
        return None, False
    try:
        chunk = _CHUNK_USAGE_DECODER.decode(data)
    except msgspec.DecodeError:
        return None, False
    return _usage_of(chunk.usage), _is_empty_array(bytes(chunk.choices))


def _is_empty_array(raw: bytes) -> bool:
    return raw[:1] == b"[" and raw[-1:] == b"]" and not raw[1:-1].strip()


def _usage_of(value: object) -> Usage | None:
    """A Usage from a decoded ``usage`` object; None unless both main counts are valid."""
    if not isinstance(value, dict):
        return None
    prompt = sane_tokens(value.get("prompt_tokens"))
    completion = sane_tokens(value.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details = value.get("prompt_tokens_details")
    cached = sane_tokens(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(prompt, completion, min(cached or 0, prompt))


@dataclass(slots=True)
class _ChoiceText:
    """The generated text of one choice, gathered from a message or from deltas."""

    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    names: dict[int, list[str]] = field(default_factory=dict)
    arguments: dict[int, list[str]] = field(default_factory=dict)

    def add(self, message: _Message, streamed: bool) -> None:
        """Append a message's (or delta's) content, refusal and tool-call fragments."""
        if isinstance(message.content, str):
            self.content.append(message.content)
        elif message.content is not None:
            self.content.extend(part.text for part in message.content if part.text)
        if message.refusal:
            self.refusal.append(message.refusal)
        for position, call in enumerate(message.tool_calls or ()):
            slot = call.index if streamed and call.index is not None else position
            if call.function is not None:
                self.names.setdefault(slot, []).append(call.function.name or "")
                self.arguments.setdefault(slot, []).append(call.function.arguments or "")

    def segments(self) -> list[str]:
        """Content, refusal, then each tool call's name and arguments, in slot order."""
        found = ["".join(self.content), "".join(self.refusal)]
        for slot in sorted(self.names):
            found += ["".join(self.names[slot]), "".join(self.arguments[slot])]
        return found


def completion_text_from_body(body: bytes) -> str:
    """All generated text of a ``chat.completion`` body, for estimating its tokens."""
    return _render(_completion_choices([body], streamed=False))


def completion_text_from_chunks(datas: Iterable[bytes]) -> str:
    """All generated text of a stream's chunk data; malformed chunks and ``[DONE]`` are skipped."""
    return _render(_completion_choices(datas, streamed=True))


def _completion_choices(datas: Iterable[bytes], streamed: bool) -> dict[int, _ChoiceText]:
    """Gather text per choice index from bodies or chunks, skipping undecodable ones."""
    choices: dict[int, _ChoiceText] = {}
    for data in datas:
        try:
            completion = _COMPLETION_DECODER.decode(data)
        except msgspec.DecodeError:
            continue
        for choice in completion.choices or ():
            message = choice.delta if streamed else choice.message
            if message is not None:
                choices.setdefault(choice.index, _ChoiceText()).add(message, streamed)
    return choices


def _render(choices: dict[int, _ChoiceText]) -> str:
    segments = [text for index in sorted(choices) for text in choices[index].segments()]
    return "\n".join(text for text in segments if text)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return msgspec.json.encode({"error": error})


def prompt_text(body: dict[str, object]) -> str:
    """All text of a request's messages plus its tool definitions, for estimating its tokens.

    It reads OpenAI's and Anthropic's request shapes alike (Anthropic's top-level ``system``,
    ``tool_use`` and ``tool_result`` blocks included).
    """
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts.extend(_part_text(part) for part in system)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                texts.extend(_message_texts(message))
    tools = body.get("tools")
    if tools:
        texts.append(msgspec.json.encode(tools).decode())
    return "\n".join(texts)


def _message_texts(message: dict[str, object]) -> list[str]:
    """The string content or text parts of one message, plus its tool calls' names and arguments."""
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [_part_text(part) for part in content]
    else:
        texts = []
    tool_calls = message.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts += [_text_of(function, "name"), _text_of(function, "arguments")]
    return [text for text in texts if text]


def _part_text(part: object) -> str:
    """The text of a content part or block (text, tool_result, tool_use)."""
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind == "tool_result":
        inner = part.get("content")
        if isinstance(inner, list):
            return "\n".join(_part_text(p) for p in inner)
        return inner if isinstance(inner, str) else ""
    if kind == "tool_use":
        return _text_of(part, "name") + msgspec.json.encode(part.get("input") or {}).decode()
    return _text_of(part)


def _text_of(value: object, key: str = "text") -> str:
    """``value[key]`` when value is a dict holding a string there, else an empty string."""
    text = value.get(key) if isinstance(value, dict) else None
    return text if isinstance(text, str) else ""


def last_user_text(body: dict[str, object]) -> str:
    """The text of the conversation's last user message (a prompt for image models, an echo)."""
    messages = body.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return prompt_text({"messages": [message]}).strip()
    return ""


def completion_chunks(
    completion: dict[str, object], include_usage: bool, extra: dict[str, object] | None = None
) -> list[bytes]:
    """A whole ``chat.completion`` told as a stream: role, content, tool calls, finish, usage,
    ``[DONE]``. ``extra`` fields go on the finish chunk (a tool pause's session, say)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    finish = choice.get("finish_reason") if isinstance(choice, dict) else "stop"
    head = {k: completion.get(k) for k in ("id", "created", "model")}

    def chunk(delta: dict[str, object], reason: object = None) -> bytes:
        body: dict[str, object] = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        if include_usage:
            body["usage"] = None
        return encode_event(msgspec.json.encode(body))

    out = [chunk({"role": "assistant", "content": ""})]
    if isinstance(content, str) and content:
        out.append(chunk({"content": content}))
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        out.append(chunk({"tool_calls": [{"index": index, **call}]}))
    if extra:
        head = {**head, **extra}
    out.append(chunk({}, finish or "stop"))
    if include_usage:
        usage_chunk = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": completion.get("usage"),
        }
        out.append(encode_event(msgspec.json.encode(usage_chunk)))
    out.append(DONE)
    return out
