"""What an operation is: how its body is read, how its whole answers are told as a stream, and
what it runs as (its wire format, its kind of job, the kind of operation models must serve)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lowart.jobs.service import CHAT
from lowart.model_entry import OperationKind


@dataclass(slots=True)  # per request: frozen ones cost more to build
class OperationFields:
    """What the gateway itself reads from an operation's body (the rest passes through)."""

    model: str
    stream: bool
    wants_usage: bool
    is_async: bool


Parse = Callable[[dict[str, Any]], OperationFields]
# A whole answer told as stream events in the caller's format: the body, whether the caller
# wants usage in the stream, and fields added to the last event (a pause object's).
Events = Callable[[dict[str, Any], bool, dict[str, Any]], list[bytes]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One kind of request the gateway serves: a parser, a renderer and how it runs."""

    name: str
    fmt: str  # the caller's wire format (formats/ids.py: OPENAI, ANTHROPIC, IMAGES)
    parse: Parse  # validates the body (400 in the caller's format), returns its fields
    events: Events | None  # how a whole answer streams; None: the operation never streams
    job_kind: str = CHAT
    kind: OperationKind = OperationKind.CHAT  # only models whose vendors serve this kind
    tools: bool = True  # may opt into gateway-run MCP tools
    headers: tuple[bytes, ...] = ()  # client headers a same-format vendor may see
