"""Decoding of the JSON text columns, tolerant of rows written by hand."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

log = structlog.get_logger()


def dumps(value: object) -> str:
    """JSON text for a column."""
    return msgspec.json.encode(value).decode()


def params_of(raw: str | None, model_id: str) -> dict[str, Any]:
    """A model's ``params`` object; anything unreadable counts as empty, and is logged."""
    if not raw:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        log.warning("model_params_unreadable", model_id=model_id)
        return {}
    return value if isinstance(value, dict) else {}


def models_of(raw: str | None, user_id: str) -> tuple[str, ...] | None:
    """A user's model allowlist; NULL means every model."""
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        # A comma-separated list written by hand is understood too.
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    log.warning("user_models_unreadable", user_id=user_id)
    return ()
