"""JSON Schemas of the served OpenAPI document: the bodies the gateway validates, as it validates
them (so a schema-valid request is accepted and a schema-invalid one refused), and the answers.

The OpenAI and Anthropic request bodies pass through to the vendor, so only the fields the
gateway reads are constrained; everything else is open (``additionalProperties``).
"""

from __future__ import annotations

from typing import Any

from lowart.api.chat import MAX_N, MAX_TOKENS_CAP
from lowart.api.jobs import MAX_PAGE
from lowart.api.openapi_admin_schemas import (
    AUDIT_ENTRY,
    AUDIT_LIST,
    PRICE,
    PRICE_SET,
    PRICES,
    REQUEST_LOG,
    REQUEST_LOG_LIST,
    TRANSFORM,
    TRANSFORM_TRIAL,
)
from lowart.api.openapi_vendors import base_url_rule, params_rules, vendor_type
from lowart.formats.comfyui import MAX_IMAGES, SEED_MAX
from lowart.identifiers import END
from lowart.providers.registry import VendorTable
from lowart.storage.usage import GROUPINGS
from lowart.tools.policy import POLICIES

Schema = dict[str, Any]

ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}
ID_PATTERN = "^[A-Za-z0-9_-]{1,64}" + END  # job, file and key ids: opaque, never a path
NOT_BLANK = r"\S"
SIDE = "([1-9][0-9]{0,2}|[1-7][0-9]{3}|80[0-9]{2}|81[0-8][0-9]|819[0-2])"  # 1 to 8192


def _nullable(schema: Schema) -> Schema:
    """The gateway treats ``null`` as absent for this field."""
    return {"anyOf": [schema, {"type": "null"}]}


def _count(low: int, high: int) -> Schema:
    return _nullable({"type": "integer", "minimum": low, "maximum": high})


def _number(low: float, high: float) -> Schema:
    return _nullable({"type": "number", "minimum": low, "maximum": high})


_BOOL: Schema = _nullable({"type": "boolean"})
# Tool entries pass through to the vendor (or name an MCP server): the gateway checks the array.
_TOOLS: Schema = _nullable({"type": "array"})
_ASYNC_NO_STREAM: Schema = {  # a job cannot stream
    "if": {"required": ["async"], "properties": {"async": {"const": True}}},
    "then": {"properties": {"stream": {"enum": [False, None]}}},
}

OPENAI_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ANTHROPIC_ERROR: Schema = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

CHAT_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "pattern": NOT_BLANK},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {"role": {"type": "string"}},
                "additionalProperties": True,
            },
        },
        "stream": _BOOL,
        "stream_options": _nullable(
            {"type": "object", "properties": {"include_usage": _BOOL}, "additionalProperties": True}
        ),
        "max_tokens": _count(1, MAX_TOKENS_CAP),
        "max_completion_tokens": _count(1, MAX_TOKENS_CAP),
        "n": _count(1, MAX_N),
        "temperature": _number(0, 2),
        "top_p": _number(0, 1),
        "tools": _TOOLS,
        "async": _BOOL,
    },
    "allOf": [
        {  # stream_options only with "stream": true
            "if": {"required": ["stream_options"], "properties": {"stream_options": ANY_OBJECT}},
            "then": {"required": ["stream"], "properties": {"stream": {"const": True}}},
        },
        _ASYNC_NO_STREAM,
    ],
    "examples": [
        {"model": "mock", "messages": [{"role": "user", "content": "Hello!"}]},
        {"model": "mock", "async": True, "messages": [{"role": "user", "content": "Hello!"}]},
    ],
}
MESSAGES_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "pattern": NOT_BLANK},
        "max_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS_CAP},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "additionalProperties": True,
                "properties": {"role": {"enum": ["user", "assistant"]}},
            },
        },
        "system": _nullable({"type": ["string", "array"]}),
        "temperature": _number(0, 1),
        "top_p": _number(0, 1),
        "stream": _BOOL,
        "tools": _TOOLS,
        "async": _BOOL,
    },
    "allOf": [_ASYNC_NO_STREAM],
    "examples": [
        {"model": "mock", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello!"}]}
    ],
}
COUNT_TOKENS_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array"},
    },
    "examples": [{"model": "mock", "messages": [{"role": "user", "content": "Hello!"}]}],
}
IMAGES_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "prompt"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "prompt": {"type": "string", "pattern": NOT_BLANK},
        "negative_prompt": _nullable({"type": "string"}),
        "n": _count(1, MAX_IMAGES),
        "size": _nullable({"type": "string", "pattern": f"^\\s*{SIDE}\\s*[xX]\\s*{SIDE}\\s*$"}),
        "response_format": {"enum": ["url", "b64_json"]},
        "seed": _count(0, SEED_MAX),
        "async": {"type": "boolean"},
    },
}
_TOKENS: Schema = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
EMBEDDINGS_REQUEST: Schema = {
    "type": "object",
    "required": ["model", "input"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2048,
                    "items": {"type": "string", "minLength": 1},
                },
                _TOKENS,
                {"type": "array", "minItems": 1, "maxItems": 2048, "items": _TOKENS},
            ]
        },
        "dimensions": _nullable({"type": "integer", "minimum": 1, "maximum": 16384}),
        "encoding_format": {"enum": ["float", "base64"]},
        "user": {"type": "string"},
    },
    "examples": [{"model": "mock", "input": "Hello!"}],
}

ASYNC_STARTED: Schema = {
    "type": "object",
    "required": ["status", "job_id", "model"],
    "properties": {
        "status": {"const": "async_started"},
        "job_id": {"type": "string", "pattern": ID_PATTERN},
        "model": {"type": "string"},
    },
}
JOB: Schema = {
    "type": "object",
    "required": ["job_id", "status", "progress", "model", "created_at", "updated_at"],
    "properties": {
        "job_id": {"type": "string", "pattern": ID_PATTERN},
        "status": {
            "enum": [
                "pending",
                "running",
                "completed",
                "failed",
                "cancelled",
                "require_confirmation",
            ]
        },
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "model": {"type": "string"},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "result": {"type": ["object", "null"]},
        "error": {"type": ["string", "null"]},
        "session_id": {"type": "string"},
    },
}
JOB_LIST: Schema = {
    "type": "object",
    "required": ["data", "has_more", "first_id", "last_id"],
    "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
        "has_more": {"type": "boolean"},
        "first_id": {"type": ["string", "null"]},
        "last_id": {"type": ["string", "null"]},
    },
}
USER: Schema = {
    "type": "object",
    "required": ["user_id", "is_admin", "status", "rpm_limit", "token_quota", "token_used"],
    "properties": {
        "user_id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "is_admin": {"type": "boolean"},
        "status": {"enum": ["active", "disabled"]},
        "rpm_limit": {"type": ["integer", "null"], "minimum": 0},
        "token_quota": {"type": ["integer", "null"], "minimum": 0},
        "token_used": {"type": "integer", "minimum": 0},
        "models": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
USER_CREATED: Schema = {
    "allOf": [
        {"$ref": "#/components/schemas/User"},
        {"type": "object", "required": ["api_key"], "properties": {"api_key": {"type": "string"}}},
    ]
}
KEY_CREATED: Schema = {
    "type": "object",
    "required": ["id", "key", "prefix"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "key": {"type": "string"},
        "prefix": {"type": "string"},
        "name": {"type": ["string", "null"]},
    },
}
MODEL: Schema = {
    "type": "object",
    "required": ["model_id", "vendor_type", "api_key_set", "api_key_last4"],
    "properties": {
        "model_id": {"type": "string"},
        "vendor_type": {"type": "string"},
        "base_url": {"type": "string"},
        "api_key_set": {"type": "boolean"},
        "api_key_last4": {"type": ["string", "null"], "maxLength": 4},
        "pricing": {"enum": ["priced", "unpriced"]},
        "price": {"oneOf": [{"$ref": "#/components/schemas/Price"}, {"type": "null"}]},
    },
    "not": {"required": ["api_key"]},  # never returned, even to admins
}


# docs/api.md, "Prices and cost": amounts are decimal strings of CURRENCY, never floats
def _list_of(ref: str) -> Schema:
    items = {"$ref": f"#/components/schemas/{ref}"}
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": items}},
    }


def admin_overrides(vendors: VendorTable) -> dict[str, Schema]:
    """Constraints the handlers check beyond the msgspec types, merged into their schemas."""
    return {
        "ModelCreate": {
            "properties": {"vendor_type": vendor_type(vendors)},
            "allOf": [base_url_rule(vendors), *params_rules(vendors)],
        },
        "DeploymentCreate": {
            "properties": {"vendor_type": vendor_type(vendors)},
            "allOf": [base_url_rule(vendors), *params_rules(vendors)],
        },
        "PolicyBody": {"properties": {"policy": {"enum": list(POLICIES)}}},
    }


USAGE_QUERY = (  # GET /admin/usage: filters, grouping and format
    *("user_id", "team_id", "key_id", "model", "served_model", "since", "until"),
    *("group_by", "format"),
)

_ITEM: Schema = {"type": "object", "additionalProperties": True}
RESPONSES_REQUEST: Schema = {
    "type": "object",
    "required": ["model"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": _ITEM}]},
        "instructions": _nullable({"type": "string"}),
        "tools": _nullable({"type": "array", "items": _ITEM}),
        "max_output_tokens": _nullable({"type": "integer", "minimum": 1}),
        "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
        "top_p": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
        "stream": _nullable({"type": "boolean"}),
        "store": _nullable({"type": "boolean"}),
        "background": _nullable({"type": "boolean"}),
        "previous_response_id": _nullable({"type": "string"}),
        "metadata": _nullable({"type": "object", "additionalProperties": {"type": "string"}}),
    },
    "examples": [{"model": "mock", "input": "Hello!"}],
}
RESPONSE: Schema = {
    "type": "object",
    "required": ["id", "object", "status", "output"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "status": {"type": "string"},
        "output": {"type": "array", "items": _ITEM},
        "usage": _nullable(_ITEM),
    },
}

QUERY_SCHEMAS: dict[str, Schema] = {
    "order": {"enum": ["asc", "desc"]},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    "after": {"type": "string"},
    "group_by": {"enum": list(GROUPINGS)},
    "format": {"enum": ["json", "csv"]},
    "tool_name": {"type": "string", "minLength": 1},
    "since": {"type": "string", "description": "ISO 8601 (UTC without a zone) or Unix seconds"},
    "until": {"type": "string", "description": "ISO 8601 (UTC without a zone) or Unix seconds"},
    "cursor": {"type": "string", "description": "the `next_cursor` of the page before"},
}

COMPONENTS: dict[str, Schema] = {
    "Error": OPENAI_ERROR,
    "AnthropicError": ANTHROPIC_ERROR,
    "ChatRequest": CHAT_REQUEST,
    "MessagesRequest": MESSAGES_REQUEST,
    "CountTokensRequest": COUNT_TOKENS_REQUEST,
    "ImagesRequest": IMAGES_REQUEST,
    "EmbeddingsRequest": EMBEDDINGS_REQUEST,
    "ResponsesRequest": RESPONSES_REQUEST,
    "Response": RESPONSE,
    "AsyncStarted": ASYNC_STARTED,
    "Job": JOB,
    "JobList": JOB_LIST,
    "User": USER,
    "UserCreated": USER_CREATED,
    "UserList": _list_of("User"),
    "KeyCreated": KEY_CREATED,
    "Model": MODEL,
    "ModelList": _list_of("Model"),
    "Transform": TRANSFORM,
    "TransformList": _list_of("Transform"),
    "TransformTrialResult": TRANSFORM_TRIAL,
    "Price": PRICE,
    "PriceSet": PRICE_SET,
    "Prices": PRICES,
    "AuditEntry": AUDIT_ENTRY,
    "AuditList": AUDIT_LIST,
    "RequestLog": REQUEST_LOG,
    "RequestLogList": REQUEST_LOG_LIST,
}
