"""Shared value types read on the hot path: a caller's principal, a routable model, vendor names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VENDORS = {"openai": "OpenAI", "anthropic": "Anthropic", "comfyui": "ComfyUI", "mock": "Mock"}
DEFAULT_CONNECT_S = 10.0
DEFAULT_IDLE_S = 120.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's user and the limits that apply."""

    user_id: str
    key_id: str
    is_admin: bool
    active: bool
    rpm_limit: int | None
    token_quota: int | None
    models: frozenset[str] | None

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models


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
    vendor: str  # lower-case key of VENDORS
    base_url: str
    api_key: str | None
    upstream_model: str
    params: dict[str, Any]
    timeouts: Timeouts
    enabled: bool
    created: int = 0  # Unix seconds


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
