"""Typed admin request bodies (msgspec), validated into 400s with the field named."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from lowart.api.asgi import parse_object
from lowart.errors import InvalidRequest
from lowart.identifiers import END, Id
from lowart.money import parse_amount

T = TypeVar("T")

Count = Annotated[int, Meta(ge=0, le=2**62)]
Name = Annotated[str, Meta(max_length=256)]
ModelList = list[Id]
# A decimal amount of CURRENCY (docs/api.md, "Budgets"); checked further by money.parse_amount.
Amount = Annotated[str, Meta(pattern=r"^[0-9]{1,9}(\.[0-9]{1,6})?$")] | Count
Period = Annotated[str, Meta(pattern=r"^(day|week|month|total)" + END)]


class UserQuota(Struct, forbid_unknown_fields=True):
    user_id: Id
    rpm_limit: Count | UnsetType | None = UNSET
    token_quota: Count | UnsetType | None = UNSET
    name: Name | UnsetType | None = UNSET
    models: ModelList | UnsetType | None = UNSET
    budget: Amount | UnsetType | None = UNSET
    budget_period: Period | UnsetType = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    token_quota_period: Period | UnsetType = UNSET


class UserPatch(Struct, forbid_unknown_fields=True):
    status: Annotated[str, Meta(pattern=r"^(active|disabled)" + END)] | UnsetType = UNSET
    rpm_limit: Count | UnsetType | None = UNSET
    token_quota: Count | UnsetType | None = UNSET
    token_used: Count | UnsetType = UNSET
    name: Name | UnsetType | None = UNSET
    models: ModelList | UnsetType | None = UNSET
    budget: Amount | UnsetType | None = UNSET
    budget_period: Period | UnsetType = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    token_quota_period: Period | UnsetType = UNSET


class TeamPatch(Struct, forbid_unknown_fields=True):
    name: Name | UnsetType | None = UNSET
    models: ModelList | UnsetType | None = UNSET
    rpm_limit: Count | UnsetType | None = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    token_quota: Count | UnsetType | None = UNSET
    budget: Amount | UnsetType | None = UNSET
    budget_period: Period | UnsetType = UNSET


class TeamCreate(TeamPatch, forbid_unknown_fields=True, kw_only=True):
    team_id: Id


class KeyCreate(Struct, forbid_unknown_fields=True):
    name: Name | UnsetType | None = UNSET
    budget: Amount | UnsetType | None = UNSET
    budget_period: Period | UnsetType = UNSET
    rpm_limit: Count | UnsetType | None = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    models: ModelList | UnsetType | None = UNSET
    expires_at: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET  # ISO 8601


class ModelCreate(Struct, forbid_unknown_fields=True):
    model_id: Id
    vendor_type: str
    base_url: Annotated[str, Meta(max_length=2048)] | UnsetType = UNSET
    api_key: Annotated[str, Meta(min_length=1, max_length=4096)] | UnsetType | None = UNSET
    upstream_model: Annotated[str, Meta(min_length=1, max_length=256)] | UnsetType | None = UNSET
    params: dict[str, Any] | UnsetType | None = UNSET
    timeout_s: Annotated[float, Meta(gt=0, le=86400)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class ModelUpdate(Struct, forbid_unknown_fields=True):
    vendor_type: str | UnsetType = UNSET
    base_url: Annotated[str, Meta(max_length=2048)] | UnsetType = UNSET
    api_key: Annotated[str, Meta(min_length=1, max_length=4096)] | UnsetType | None = UNSET
    upstream_model: Annotated[str, Meta(min_length=1, max_length=256)] | UnsetType | None = UNSET
    params: dict[str, Any] | UnsetType | None = UNSET
    timeout_s: Annotated[float, Meta(gt=0, le=86400)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    model_id: Id | UnsetType = UNSET  # accepted when it matches the path


Weight = Annotated[float, Meta(ge=0, le=1_000_000)]
Cap = Annotated[int, Meta(ge=1, le=2**62)]


class DeploymentCreate(Struct, forbid_unknown_fields=True):
    id: Id
    vendor_type: str
    base_url: Annotated[str, Meta(max_length=2048)] | UnsetType = UNSET
    api_key: Annotated[str, Meta(min_length=1, max_length=4096)] | UnsetType | None = UNSET
    upstream_model: Annotated[str, Meta(min_length=1, max_length=256)] | UnsetType | None = UNSET
    params: dict[str, Any] | UnsetType | None = UNSET
    weight: Weight | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    rpm_cap: Cap | UnsetType | None = UNSET
    tpm_cap: Cap | UnsetType | None = UNSET


class DeploymentUpdate(Struct, forbid_unknown_fields=True):
    vendor_type: str | UnsetType = UNSET
    base_url: Annotated[str, Meta(max_length=2048)] | UnsetType = UNSET
    api_key: Annotated[str, Meta(min_length=1, max_length=4096)] | UnsetType | None = UNSET
    upstream_model: Annotated[str, Meta(min_length=1, max_length=256)] | UnsetType | None = UNSET
    params: dict[str, Any] | UnsetType | None = UNSET
    weight: Weight | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    rpm_cap: Cap | UnsetType | None = UNSET
    tpm_cap: Cap | UnsetType | None = UNSET


class Fallbacks(Struct, forbid_unknown_fields=True):
    fallbacks: list[Id]


def parse_time(value: str | None, name: str) -> float | None:
    """ISO 8601 (UTC when no zone is given) or Unix seconds."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise InvalidRequest(f"'{name}' must be a finite time.", param=name)
        return number
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' must be ISO 8601 or Unix seconds.", param=name) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def decode(body: bytes, kind: type[T]) -> T:
    """Parse and validate a body; every failure is a 400 naming the field."""
    return convert(parse_object(body), kind)


def convert(value: Any, kind: type[T]) -> T:
    """Validate parsed fields (a body's, or the command line's options) into ``kind``."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc), param=_param(str(exc))) from exc


def _param(message: str) -> str | None:
    marker = "at `$."
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split("`", 1)[0] or None


def given(struct: Struct) -> dict[str, Any]:
    """The fields the caller sent (UNSET ones left out); an amount becomes micro-units."""
    fields = {
        f: getattr(struct, f) for f in struct.__struct_fields__ if getattr(struct, f) is not UNSET
    }
    if fields.get("budget") is not None:
        fields["budget"] = parse_amount(fields["budget"])
        if fields["budget"] is None:
            message = "'budget' must be a decimal amount such as \"10.00\"."
            raise InvalidRequest(message, param="budget")
    return fields


Source = Annotated[str, Meta(min_length=1, max_length=65536)]
OnError = Annotated[str, Meta(pattern=r"^(fail|skip)" + END)]
Entry = Annotated[str, Meta(pattern=r"^(on_request|on_response|on_chunk)" + END)]


class TransformCreate(Struct, forbid_unknown_fields=True):
    source: Source
    model_id: Id | None = None
    deployment: None = None  # reserved: deployments do not exist yet
    on_request: bool = True
    on_response: bool = False
    on_chunk: bool = False
    on_error: OnError = "fail"
    enabled: bool = True


class TransformUpdate(Struct, forbid_unknown_fields=True):
    source: Source | UnsetType = UNSET
    model_id: Id | UnsetType | None = UNSET
    on_request: bool | UnsetType = UNSET
    on_response: bool | UnsetType = UNSET
    on_chunk: bool | UnsetType = UNSET
    on_error: OnError | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class TransformTrial(Struct, forbid_unknown_fields=True):
    body: dict[str, Any]
    entry: Entry = "on_request"
    source: Source | UnsetType = UNSET  # an unsaved edit, tried instead of the stored source
    format: Annotated[str, Meta(pattern=r"^(openai|anthropic|responses)" + END)] = "openai"
