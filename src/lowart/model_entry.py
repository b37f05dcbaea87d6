"""What a request can be routed to, read on the hot path: a model as the directory holds it
(vendor, upstream, timeouts, the kinds of operation its vendor serves)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEFAULT_CONNECT_S = 10.0
DEFAULT_IDLE_S = 120.0


class OperationKind(StrEnum):
    """A kind of operation a vendor serves (its declaration in ``providers/``)."""

    CHAT = "chat"
    IMAGES = "images"
    EMBEDDINGS = "embeddings"


CHAT_ONLY = frozenset({OperationKind.CHAT})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-attempt timeouts in seconds."""

    connect: float
    first_byte: float
    idle: float
    total: float


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A routable model with its vendor key already decrypted."""

    model_id: str
    vendor: str  # the vendor's lower-case key (providers/registry.py)
    base_url: str
    api_key: str | None
    upstream_model: str
    params: dict[str, Any]
    timeouts: Timeouts
    enabled: bool
    created: int = 0  # Unix seconds
    operations: frozenset[OperationKind] = CHAT_ONLY  # what its vendor serves


def _seconds(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def timeouts_of(params: dict[str, Any], total: float) -> Timeouts:
    """``params.timeouts`` with defaults: connect 10 s, first byte = total, idle 120 s."""
    raw = params.get("timeouts")
    spec = raw if isinstance(raw, dict) else {}
    total = total if total > 0 else 600.0
    return Timeouts(
        connect=min(_seconds(spec.get("connect"), DEFAULT_CONNECT_S), total),
        first_byte=min(_seconds(spec.get("first_byte"), total), total),
        idle=min(_seconds(spec.get("idle"), DEFAULT_IDLE_S), total),
        total=total,
    )
