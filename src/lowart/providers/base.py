"""The provider interface: what dispatch hands a vendor adapter, and what it gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from lowart.entries import ModelEntry
from lowart.formats.openai import Usage


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat request in OpenAI's shape, parsed once at the edge."""

    body: dict[str, Any]
    stream: bool
    wants_usage: bool  # the client asked for stream_options.include_usage
    request_id: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer: the OpenAI ``chat.completion`` bytes and the vendor's usage."""

    body: bytes
    usage: Usage | None


class ChatStream(Protocol):
    """An open upstream stream yielding OpenAI SSE bytes for the client."""

    usage: Usage | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def completion_text(self) -> str:
        """What was generated so far, for estimation when the vendor reports no usage."""
        ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    """A vendor adapter. Raises errors from ``lowart.errors``; never returns error objects."""

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion: ...

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        """Open the stream; pre-stream upstream errors raise here, with their status."""
        ...
