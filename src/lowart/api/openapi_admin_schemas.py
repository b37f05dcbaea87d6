"""JSON Schemas of the admin answers that came with money, transforms, the audit log and the
request logs, for the served OpenAPI document (``openapi_schemas.COMPONENTS`` lists them)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

AMOUNT: Schema = {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,6})?$"}
_PRICE_AMOUNTS = ("input", "output", "cache_read", "cache_write", "image", "embedding")
PRICE: Schema = {
    "type": "object",
    "required": ["effective_from", *_PRICE_AMOUNTS],
    "properties": {
        "effective_from": {"type": "string", "format": "date-time"},
        **dict.fromkeys(_PRICE_AMOUNTS, AMOUNT),
    },
}
PRICE_SET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "effective_from": {"type": "string", "format": "date-time"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        **dict.fromkeys(_PRICE_AMOUNTS, AMOUNT),
    },
}
PRICES: Schema = {
    "type": "object",
    "required": ["model_id", "currency", "pricing", "price", "history"],
    "properties": {
        "model_id": {"type": "string"},
        "currency": {"type": "string"},
        "pricing": {"enum": ["priced", "unpriced"]},
        "price": {"oneOf": [{"$ref": "#/components/schemas/Price"}, {"type": "null"}]},
        "history": {"type": "array", "items": {"$ref": "#/components/schemas/Price"}},
    },
}


_TEXT_OR_NULL = {"type": ["string", "null"]}
TRANSFORM: Schema = {
    "type": "object",
    "required": ["id", "model_id", "source", "on_request", "on_response", "on_chunk", "on_error"],
    "properties": {
        "id": {"type": "integer"},
        "model_id": _TEXT_OR_NULL,
        "deployment": {"type": "null"},
        "source": {"type": "string"},
        "on_request": {"type": "boolean"},
        "on_response": {"type": "boolean"},
        "on_chunk": {"type": "boolean"},
        "on_error": {"enum": ["fail", "skip"]},
        "enabled": {"type": "boolean"},
        "created_at": _TEXT_OR_NULL,
        "updated_at": _TEXT_OR_NULL,
    },
}
TRANSFORM_TRIAL: Schema = {
    "type": "object",
    "required": ["entry", "outcome", "result", "message"],
    "properties": {
        "entry": {"enum": ["on_request", "on_response", "on_chunk"]},
        "outcome": {"enum": ["ok", "rejected", "error", "timeout"]},
        "result": {},
        "message": _TEXT_OR_NULL,
    },
}
AUDIT_ENTRY: Schema = {  # docs/api.md, "Admin audit log"
    "type": "object",
    "required": ["id", "at", "actor", "action", "target", "changes"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "actor_key_id": _TEXT_OR_NULL,
        "action": {"type": "string"},
        "target": _TEXT_OR_NULL,
        "changes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {"from": {}, "to": {}},
            },
        },
        "client_address": _TEXT_OR_NULL,
        "request_id": _TEXT_OR_NULL,
    },
}
AUDIT_LIST: Schema = {
    "type": "object",
    "required": ["data", "next_cursor"],
    "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
        "next_cursor": _TEXT_OR_NULL,
    },
}
REQUEST_LOG: Schema = {  # docs/api.md, "Admin: request logs"
    "type": "object",
    "required": ["id", "request_id", "user_id", "model", "created_at", "status", "truncated"],
    "properties": {
        "id": {"type": "integer"},
        "request_id": {"type": "string"},
        "user_id": {"type": "string"},
        "model": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "status": {"enum": ["ok", "error", "cancelled"]},
        "http_status": {"type": "integer"},
        "stream": {"type": "boolean"},
        "request_bytes": {"type": "integer", "minimum": 0},
        "response_bytes": {"type": "integer", "minimum": 0},
        "truncated": {"type": "boolean"},
        "request_body": {"type": "string", "description": "redacted; only on one log"},
        "response_body": {"type": "string", "description": "redacted; only on one log"},
    },
}
REQUEST_LOG_LIST: Schema = {
    "type": "object",
    "required": ["data", "has_more", "first_id", "last_id"],
    "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/RequestLog"}},
        "has_more": {"type": "boolean"},
        "first_id": {"type": ["integer", "null"]},
        "last_id": {"type": ["integer", "null"]},
    },
}
