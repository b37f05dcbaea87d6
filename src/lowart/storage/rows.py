"""Plain row types that storage hands to the layers above."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from lowart.money import Budget, Price


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive datetimes, which are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def iso_seconds(unix: float) -> str:
    """Unix seconds as ISO 8601 in UTC."""
    return iso(dt.datetime.fromtimestamp(unix, dt.UTC)) or ""


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: str
    name: str | None
    is_admin: bool
    status: str
    rpm_limit: int | None
    token_quota: int | None
    token_used: int
    models: tuple[str, ...] | None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    budget: Budget | None = None
    tpm_limit: int | None = None
    team_id: str | None = None
    token_quota_period: str = "total"  # the period token_used counts (total: ever)

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class TeamRow:
    """A team: its limits apply to every member, beside the member's own."""

    team_id: str
    name: str | None
    models: tuple[str, ...] | None
    rpm_limit: int | None
    tpm_limit: int | None
    token_quota: int | None
    budget: Budget | None
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    user_id: str
    key_hash: str
    prefix: str
    name: str | None
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    budget: Budget | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    models: tuple[str, ...] | None = None  # None: the user's
    expires_at: float | None = None  # Unix seconds


@dataclass(frozen=True, slots=True)
class ModelRow:
    model_id: str
    vendor_type: str
    base_url: str
    api_key: str | None  # as stored: "enc:…" or a plain key written by hand
    upstream_model: str | None
    params: dict[str, Any]
    timeout_s: float
    enabled: bool
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """One of a model's further upstreams (docs/api.md, "Deployments")."""

    model_id: str
    id: str
    vendor_type: str
    base_url: str
    api_key: str | None  # as stored: "enc:…" or a plain key written by hand
    upstream_model: str | None
    params: dict[str, Any]
    weight: float
    enabled: bool
    rpm_cap: int | None
    tpm_cap: int | None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FallbackRow:
    primary_model_id: str
    fallback_model_id: str
    priority: int
    id: int


@dataclass(frozen=True, slots=True)
class TransformRow:
    """A transform script as stored (docs/transforms.md)."""

    id: int
    model_id: str | None
    deployment: str | None
    source: str
    on_request: bool
    on_response: bool
    on_chunk: bool
    on_error: str  # "fail" | "skip"
    enabled: bool
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the hot path serves from memory, read in one transaction."""

    users: tuple[UserRow, ...]
    keys: tuple[KeyRow, ...]
    models: tuple[ModelRow, ...]
    fallbacks: tuple[FallbackRow, ...]
    transforms: tuple[TransformRow, ...] = ()
    deployments: tuple[DeploymentRow, ...] = ()
    prices: dict[str, tuple[Price, ...]] = field(default_factory=dict)  # model id → oldest first
    spent: dict[str, int] = field(default_factory=dict)  # budget ledger key → spent this period
    teams: tuple[TeamRow, ...] = ()
