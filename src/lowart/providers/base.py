"""The provider interface: what dispatch hands a vendor adapter, and what it gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lowart.formats.ids import OPENAI
from lowart.formats.openai import Usage
from lowart.model_entry import ModelEntry


class JobHooks(Protocol):
    """What a request run as a job lets its vendor do: report progress, remember its upstream
    handle so that a restart resumes instead of resubmitting, and learn of a user's cancel."""

    @property
    def upstream_ref(self) -> str | None: ...

    @property
    def cancelled_by_user(self) -> bool: ...

    async def progress(self, value: float) -> None: ...

    async def set_upstream_ref(self, ref: str) -> None: ...


@dataclass(slots=True)  # per request: frozen ones cost more to build
class ChatRequest:
    """One chat request, parsed once at the edge, in the wire format ``fmt``.

    Dispatch holds it in the caller's format; a provider receives it in its own native format.
    """

    body: dict[str, Any]
    stream: bool
    wants_usage: bool  # usage in the stream the client gets (OpenAI's include_usage)
    request_id: str
    fmt: str = OPENAI
    headers: Mapping[str, str] = field(default_factory=dict)  # allowlisted client headers
    user_id: str = ""  # the caller (vendors that store outputs, such as ComfyUI, file them here)
    job: JobHooks | None = None  # set when the request runs as a job
    raw_headers: Sequence[tuple[bytes, bytes]] = ()  # the scope's, read only by sticky routing
    preferred_deployment: str | None = None  # tried first (docs/api.md, "Deployments")


@dataclass(slots=True)  # per request: frozen ones cost more to build
class Completion:
    """A whole answer: the response bytes (in the request's format) and the vendor's usage."""

    body: bytes
    usage: Usage | None


class ChatStream(Protocol):
    """An open upstream stream yielding SSE bytes (in the request's format) for the client."""

    @property
    def usage(self) -> Usage | None:
        """The vendor's usage, once the stream has carried it."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def completion_text(self) -> str:
        """What was generated so far, for estimation when the vendor reports no usage."""
        ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    """A vendor adapter. Raises errors from ``lowart.errors``; never returns error objects."""

    native: str  # the wire format it speaks: OPENAI or ANTHROPIC

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion: ...

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        """Open the stream; pre-stream upstream errors raise here, with their status."""
        ...
