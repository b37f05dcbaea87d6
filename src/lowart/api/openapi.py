"""The served OpenAPI document: admin bodies from their msgspec types, the rest from
``openapi_schemas``. Every operation lists the statuses it answers, in its family's error shape."""

from __future__ import annotations

from typing import Any

import msgspec

from lowart import __version__
from lowart.api.bodies import (
    DeploymentCreate,
    DeploymentUpdate,
    Fallbacks,
    KeyCreate,
    ModelCreate,
    ModelUpdate,
    TeamCreate,
    TeamPatch,
    TransformCreate,
    TransformTrial,
    TransformUpdate,
    UserPatch,
    UserQuota,
)
from lowart.api.openapi_operations import CHAT_ERRORS as _CHAT_ERRORS
from lowart.api.openapi_operations import csv_too as _csv_too
from lowart.api.openapi_operations import error_responses as _errors
from lowart.api.openapi_operations import op as _op
from lowart.api.openapi_operations import page as _page
from lowart.api.openapi_operations import path_param as _path_param
from lowart.api.openapi_operations import query as _query
from lowart.api.openapi_schemas import (
    COMPONENTS,
    USAGE_QUERY,
    admin_overrides,
)
from lowart.api.openapi_vendors import BASE_URL_PATTERN, base_url_rule, params_rules, vendor_type
from lowart.api.tools import ConfirmBody, PolicyBody, ServerBody
from lowart.providers.registry import VendorTable

EMPTY, URL = {"pattern": r"^\s*$"}, {"pattern": BASE_URL_PATTERN}


def _user_paths() -> dict[str, Any]:
    return {
        "/v1/chat/completions": {
            "post": _op(
                "Chat completion (OpenAI format); 202 with async",
                body="ChatRequest",
                ok={200: None, 202: "AsyncStarted"},
                errors=_CHAT_ERRORS,
                stream=True,
            )
        },
        "/v1/models": {"get": _op("Models the caller may use")},
        "/v1/models/{model_id}": {"parameters": _path_param("model_id"), "get": _op("One model")},
        "/v1/usage": {"get": _op("The caller's quota, usage, cost and budgets")},
        "/v1/keys": {
            "post": _op(
                "Mint a key within the calling key's rights (shown once)",
                body="KeyCreate",
                body_required=False,
                ok={201: "KeyCreated"},
            ),
            "get": _op("The caller's keys"),
        },
        "/v1/keys/{key_id}": {
            "parameters": _path_param("key_id"),
            "delete": _op("Revoke one of the caller's keys"),
        },
        "/v1/messages": {
            "post": _op(
                "Anthropic Messages, any vendor; 202 with async",
                body="MessagesRequest",
                ok={200: None, 202: "AsyncStarted"},
                errors=(400, 401, 403, 404, 413, 429, 502, 504, 529),
                shape="AnthropicError",
                stream=True,
            )
        },
        "/v1/messages/count_tokens": {
            "post": _op(
                "An estimate of a request's input tokens",
                body="CountTokensRequest",
                errors=(400, 401, 403, 404, 413),
                shape="AnthropicError",
            )
        },
        "/v1/images/generations": {
            "post": _op(
                "Images on a ComfyUI model (202 with async)",
                body="ImagesRequest",
                ok={200: None, 202: "AsyncStarted"},
                errors=(400, 401, 403, 404, 413, 429, 502, 504),
            )
        },
        "/v1/embeddings": {
            "post": _op(
                "Embeddings (OpenAI format), whole answers only",
                body="EmbeddingsRequest",
                errors=(400, 401, 403, 404, 413, 429, 502, 503, 504),
            )
        },
        "/v1/responses": {
            "post": _op(
                "OpenAI's Responses API, any chat vendor; background: true answers queued",
                body="ResponsesRequest",
                ok={200: "Response"},
                errors=(400, 401, 403, 404, 409, 410, 413, 429, 502, 503, 504),
                stream=True,
            )
        },
        "/v1/responses/{response_id}": {
            "parameters": _path_param("response_id"),
            "get": _op("A stored response (a background one as it stands)", ok={200: "Response"}),
            "delete": _op("Delete a stored response"),
        },
        "/v1/responses/{response_id}/input_items": {
            "parameters": [*_path_param("response_id"), *_query("limit", "after", "order")],
            "get": _op("A stored response's own input items"),
        },
        "/v1/responses/{response_id}/cancel": {
            "parameters": _path_param("response_id"),
            "post": _op("Cancel a background response", ok={200: "Response"}),
        },
        "/v1/jobs": {
            "get": _op("The caller's jobs, newest first", ok={200: "JobList"}),
            "parameters": _query("limit", "after"),
        },
        "/v1/jobs/{job_id}": {
            "parameters": _path_param("job_id"),
            "get": _op("One job", ok={200: "Job"}),
        },
        "/v1/jobs/{job_id}/cancel": {
            "parameters": _path_param("job_id"),
            "post": _op("Cancel a pending or running job", ok={200: "Job"}),
        },
        "/v1/files/{file_id}": {
            "parameters": [*_path_param("file_id"), *_query("exp", "sig")],
            "get": {
                "summary": "A stored file: the owner's key, or a signed URL (?exp=&sig=)",
                "security": [{"bearer": []}, {"apiKey": []}, {}],  # or a signed URL
                "responses": {
                    "200": {"description": "The file", "content": {"*/*": {}}},
                    **_errors((401, 403, 404)),
                },
            },
        },
        "/v1/tools/confirm": {
            "post": _op(
                "Approve or reject paused tool calls",
                body="ConfirmBody",
                errors=(400, 401, 403, 404, 409, 410),
            )
        },
        "/v1/tools/sessions": {"get": _op("The caller's pending confirmations")},
    }


def _admin_paths() -> dict[str, Any]:
    return {
        "/admin/mcp/servers": {
            "post": _op("Register an MCP server", body="ServerBody", ok={201: None}),
            "get": _op("Registered MCP servers (secrets never shown)"),
        },
        "/admin/mcp/register": {
            "post": _op("Alias of POST /admin/mcp/servers", body="ServerBody", ok={201: None})
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
            "post": _op("Set a tool policy", body="PolicyBody", ok={201: None}),
            "get": _op("Tool policies"),
            "delete": {
                **_op("Remove a tool policy"),
                "parameters": _query("tool_name", "server", "user_id", required=("tool_name",)),
            },
        },
        "/admin/users/quota": {
            "post": _op(
                "Create a user (201, with its key) or update its limits (200)",
                body="UserQuota",
                ok={200: "User", 201: "UserCreated"},
            )
        },
        "/admin/users": {"get": _op("List users", ok={200: "UserList"})},
        "/admin/users/{user_id}": {
            "parameters": _path_param("user_id"),
            "get": _op("One user", ok={200: "User"}),
            "patch": _op("Update a user", body="UserPatch", ok={200: "User"}),
            "delete": _op("Disable a user and revoke its keys", ok={200: "User"}),
        },
        "/admin/users/{user_id}/keys": {
            "parameters": _path_param("user_id"),
            "post": _op(
                "Create a key (shown once)",
                body="KeyCreate",
                body_required=False,
                ok={201: "KeyCreated"},
            ),
            "get": _op("List a user's keys"),
        },
        "/admin/keys/{key_id}": {
            "parameters": _path_param("key_id"),
            "delete": _op("Revoke a key"),
        },
        "/admin/models": {
            "post": _op(
                "Register a model",
                body="ModelCreate",
                ok={201: "Model"},
                errors=(400, 401, 403, 409),
            ),
            "get": _op("List models", ok={200: "ModelList"}),
        },
        "/admin/models/{model_id}": {
            "parameters": _path_param("model_id"),
            "get": _op("One model", ok={200: "Model"}),
            "put": _op("Replace a model", body="ModelReplace", ok={200: "Model"}),
            "patch": _op("Update a model", body="ModelUpdate", ok={200: "Model"}),
            "delete": _op("Delete a model"),
        },
        "/admin/models/{model_id}/fallbacks": {
            "parameters": _path_param("model_id"),
            "get": _op("A model's fallback chain"),
            "put": _op("Set a model's fallback chain", body="Fallbacks"),
        },
        **_transform_paths(),
        "/admin/models/{model_id}/deployments": {
            "parameters": _path_param("model_id"),
            "get": _op("A model's deployments, its own first, with their live health"),
            "post": _op(
                "Add a deployment",
                body="DeploymentCreate",
                ok={201: None},
                errors=(400, 401, 403, 404, 409),
            ),
        },
        "/admin/models/{model_id}/deployments/{deployment_id}": {
            "parameters": [*_path_param("model_id"), *_path_param("deployment_id")],
            "get": _op("One deployment"),
            "patch": _op("Update a deployment (weight, enabled, caps…)", body="DeploymentUpdate"),
            "delete": _op("Delete a deployment"),
        },
        "/admin/models/{model_id}/prices": {
            "parameters": _path_param("model_id"),
            "get": _op("A model's prices: in effect now, and the history", ok={200: "Prices"}),
            "put": _op("Set a model's prices from a time on", body="PriceSet", ok={200: "Prices"}),
        },
        "/admin/teams": {
            "post": _op(
                "Create a team", body="TeamCreate", ok={201: None}, errors=(400, 401, 403, 409)
            ),
            "get": _op("List teams with their members"),
        },
        "/admin/teams/{team_id}": {
            "parameters": _path_param("team_id"),
            "get": _op("One team"),
            "patch": _op("Update a team", body="TeamPatch"),
            "delete": _op("Delete a team (its members belong to none)"),
        },
        "/admin/teams/{team_id}/members/{user_id}": {
            "parameters": _path_param("team_id") + _path_param("user_id"),
            "put": _op("Add a user to the team", errors=(401, 403, 404, 409)),
            "delete": _op("Remove a user from the team"),
        },
        "/admin/usage": {
            "get": _csv_too(_op("Usage and cost across users, as JSON or CSV")),
            "parameters": _query(*USAGE_QUERY),
        },
        "/admin/audit": {
            "get": _op("The admin audit log, newest first", ok={200: "AuditList"}),
            "parameters": _query("actor", "action", "target", "since", "until", "limit", "cursor"),
        },
        "/admin/request-logs": {
            "get": _op("Search the request logs, newest first", ok={200: "RequestLogList"}),
            "parameters": _query(
                "request_id", "user_id", "model", "since", "until", "limit", "after"
            ),
        },
        "/admin/request-logs/{request_id}": {
            "parameters": _path_param("request_id"),
            "get": _op("One request's log, with its redacted bodies", ok={200: "RequestLog"}),
        },
    }


def _transform_paths() -> dict[str, Any]:
    """docs/transforms.md: scripts are loaded in a worker before they are stored (400)."""
    one = _path_param("transform_id", r"^[0-9]+$")
    return {
        "/admin/transforms": {
            "post": _op(
                "Register a transform script",
                body="TransformCreate",
                ok={201: "Transform"},
                errors=(400, 401, 403, 409),
            ),
            "get": _op("List transform scripts", ok={200: "TransformList"}),
        },
        "/admin/transforms/{transform_id}": {
            "parameters": one,
            "get": _op("One transform script", ok={200: "Transform"}),
            "patch": _op(
                "Change a transform script",
                body="TransformUpdate",
                ok={200: "Transform"},
                errors=(400, 401, 403, 404, 409),
            ),
            "delete": _op("Delete a transform script"),
        },
        "/admin/transforms/{transform_id}/test": {
            "parameters": one,
            "post": _op(
                "Run a transform's entry point on a sample body",
                body="TransformTrial",
                ok={200: "TransformTrialResult"},
            ),
        },
    }


def _ops_paths() -> dict[str, Any]:
    return {
        "/health": {"get": _op("Liveness", public=True, errors=())},
        "/ready": {
            "get": _op(
                "Readiness (database, Redis, invalidation subscription)", public=True, errors=(503,)
            )
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (a bearer METRICS_TOKEN when one is set)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors((401,)),
                },
            }
        },
        "/openapi.json": {"get": _op("This document", public=True, errors=())},
        "/ui": {"get": _page("The web console (docs/ui.md); it calls only this API")},
        "/ui/{path}": {
            "parameters": _path_param("path"),
            "get": _page("The console's files; any other path is one of its views", missing=True),
        },
    }


ADMIN_BODIES = (
    UserQuota,
    UserPatch,
    KeyCreate,
    ModelCreate,
    ModelUpdate,
    Fallbacks,
    DeploymentCreate,
    DeploymentUpdate,
    TeamCreate,
    TeamPatch,
    ServerBody,
    PolicyBody,
    ConfirmBody,
    TransformCreate,
    TransformUpdate,
    TransformTrial,
)


def _admin_schemas(vendors: VendorTable) -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        ADMIN_BODIES, ref_template="#/components/schemas/{name}"
    )
    for name, extra in admin_overrides(vendors).items():
        schema = components[name]
        schema["properties"].update(extra.pop("properties", {}))
        schema.update(extra)
    update = components["ModelUpdate"]
    # model_id is only accepted when it repeats the path's: not part of the documented body.
    del update["properties"]["model_id"]
    update["properties"]["vendor_type"] = vendor_type(vendors)
    # Without the vendor in the body, an empty base_url may be a Mock model's.
    update["properties"]["base_url"] = {"type": "string", "anyOf": [EMPTY, URL]}
    components["ModelReplace"] = {
        **update,
        "properties": {**update["properties"], "base_url": {"type": "string"}},
        "required": ["vendor_type"],
        "allOf": [base_url_rule(vendors), *params_rules(vendors)],
    }
    components["DeploymentUpdate"]["properties"]["base_url"] = update["properties"]["base_url"]
    return dict(components)


def openapi_document(vendors: VendorTable) -> dict[str, Any]:
    """The OpenAPI 3.1 document the gateway serves at ``/openapi.json``, for these vendors."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lowart",
            "version": __version__,
            "description": "An LLM API gateway speaking the OpenAI and Anthropic APIs.",
        },
        "paths": {**_user_paths(), **_admin_paths(), **_ops_paths()},
        "components": {
            "schemas": {**_admin_schemas(vendors), **COMPONENTS},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
