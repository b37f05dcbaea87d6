"""The served OpenAPI document: admin bodies from their msgspec types, the rest described."""

from __future__ import annotations

from typing import Any

import msgspec

from lowart import __version__
from lowart.api.bodies import Fallbacks, KeyCreate, ModelCreate, ModelUpdate, UserPatch, UserQuota
from lowart.api.tools import ConfirmBody, PolicyBody, ServerBody

_ERROR = {
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
_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
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
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "tools": {"type": "array", "items": _ANY_OBJECT},
    },
}


_MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 0},
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
        "system": {"type": ["string", "array"]},
        "stream": {"type": "boolean"},
        "tools": {"type": "array", "items": _ANY_OBJECT},
    },
}
_IMAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "prompt"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "prompt": {"type": "string", "minLength": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string", "pattern": "^[0-9]+x[0-9]+$"},
        "response_format": {"enum": ["url", "b64_json"]},
        "seed": {"type": "integer", "minimum": 0},
        "async": {"type": "boolean"},
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _op(
    summary: str,
    *,
    body: str | None = None,
    ok: int = 200,
    public: bool = False,
    errors: tuple[int, ...] = (400, 401, 403, 404),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {
                "description": "OK",
                "content": {"application/json": {"schema": _ANY_OBJECT}},
            },
            **_errors(*errors),
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if public:
        op["security"] = []
    return op


def _path_param(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def _paths() -> dict[str, Any]:
    return {
        "/v1/chat/completions": {
            "post": _op(
                "Chat completion (OpenAI format)",
                body="ChatRequest",
                errors=(400, 401, 403, 404, 413, 429, 502, 503, 504),
            )
        },
        "/v1/models": {"get": _op("Models the caller may use")},
        "/v1/models/{model_id}": {"parameters": _path_param("model_id"), "get": _op("One model")},
        "/v1/usage": {"get": _op("The caller's quota and usage")},
        "/v1/messages": {
            "post": _op(
                "Anthropic Messages, any vendor",
                body="MessagesRequest",
                errors=(400, 401, 403, 404, 413, 429, 502, 504, 529),
            )
        },
        "/v1/messages/count_tokens": {
            "post": _op("An estimate of a request's input tokens", body="MessagesRequest")
        },
        "/v1/images/generations": {
            "post": _op(
                "Images on a ComfyUI model (202 with async)",
                body="ImagesRequest",
                errors=(400, 401, 403, 404, 429, 502, 504),
            )
        },
        "/v1/jobs": {
            "get": _op("The caller's jobs, newest first"),
            "parameters": [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("limit", "after")
            ],
        },
        "/v1/jobs/{job_id}": {"parameters": _path_param("job_id"), "get": _op("One job")},
        "/v1/jobs/{job_id}/cancel": {
            "parameters": _path_param("job_id"),
            "post": _op("Cancel a pending or running job"),
        },
        "/v1/files/{file_id}": {
            "parameters": _path_param("file_id"),
            "get": {
                "summary": "A stored file: the owner's key, or a signed URL (?exp=&sig=)",
                "responses": {"200": {"description": "The file"}, **_errors(404)},
            },
        },
        "/v1/tools/confirm": {
            "post": _op(
                "Approve or reject paused tool calls",
                body="ConfirmBody",
                errors=(400, 401, 404, 409, 410),
            )
        },
        "/v1/tools/sessions": {"get": _op("The caller's pending confirmations")},
        "/admin/mcp/servers": {
            "post": _op("Register an MCP server", body="ServerBody", ok=201),
            "get": _op("Registered MCP servers (secrets never shown)"),
        },
        "/admin/mcp/register": {
            "post": _op("Alias of POST /admin/mcp/servers", body="ServerBody", ok=201)
        },
        "/admin/mcp/servers/{name}": {
            "parameters": _path_param("name"),
            "delete": _op("Stop and remove an MCP server"),
        },
        "/admin/mcp/servers/{name}/tools": {
            "parameters": _path_param("name"),
            "get": _op("A server's tools"),
        },
        "/admin/tools/policies": {
            "post": _op("Set a tool policy", body="PolicyBody", ok=201),
            "get": _op("Tool policies"),
            "delete": _op("Remove a tool policy"),
            "parameters": [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("tool_name", "server", "user_id")
            ],
        },
        "/admin/users/quota": {
            "post": _op("Create a user (201, with a key) or update its limits", body="UserQuota")
        },
        "/admin/users": {"get": _op("List users")},
        "/admin/users/{user_id}": {
            "parameters": _path_param("user_id"),
            "get": _op("One user"),
            "patch": _op("Update a user", body="UserPatch"),
            "delete": _op("Disable a user and revoke its keys"),
        },
        "/admin/users/{user_id}/keys": {
            "parameters": _path_param("user_id"),
            "post": _op("Create a key (shown once)", body="KeyCreate", ok=201),
            "get": _op("List a user's keys"),
        },
        "/admin/keys/{key_id}": {
            "parameters": _path_param("key_id"),
            "delete": _op("Revoke a key"),
        },
        "/admin/models": {
            "post": _op("Register a model", body="ModelCreate", ok=201),
            "get": _op("List models"),
        },
        "/admin/models/{model_id}": {
            "parameters": _path_param("model_id"),
            "get": _op("One model"),
            "put": _op("Replace a model", body="ModelUpdate"),
            "patch": _op("Update a model", body="ModelUpdate"),
            "delete": _op("Delete a model"),
        },
        "/admin/models/{model_id}/fallbacks": {
            "parameters": _path_param("model_id"),
            "get": _op("A model's fallback chain"),
            "put": _op("Set a model's fallback chain", body="Fallbacks"),
        },
        "/admin/usage": {
            "get": _op("Usage across users"),
            "parameters": [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("user_id", "model", "since", "until", "group_by")
            ],
        },
        "/health": {"get": _op("Liveness", public=True, errors=())},
        "/ready": {"get": _op("Readiness (database, Redis)", public=True, errors=(503,))},
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {"get": _op("This document", public=True, errors=())},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document the gateway serves at ``/openapi.json``."""
    _, components = msgspec.json.schema_components(
        [
            UserQuota,
            UserPatch,
            KeyCreate,
            ModelCreate,
            ModelUpdate,
            Fallbacks,
            ServerBody,
            PolicyBody,
            ConfirmBody,
        ],
        ref_template="#/components/schemas/{name}",
    )
    schemas = {
        **components,
        "Error": _ERROR,
        "ChatRequest": _CHAT_REQUEST,
        "MessagesRequest": _MESSAGES_REQUEST,
        "ImagesRequest": _IMAGES_REQUEST,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lowart",
            "version": __version__,
            "description": "An LLM API gateway speaking the OpenAI and Anthropic APIs.",
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
