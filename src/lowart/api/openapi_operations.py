"""The building blocks of the served OpenAPI document's operations: an operation with its
success and error responses, its parameters, and the console's static pages."""

from __future__ import annotations

from typing import Any

from lowart.api.openapi_schemas import ANY_OBJECT, QUERY_SCHEMAS

Operation = dict[str, Any]
CHAT_ERRORS = (400, 401, 403, 404, 413, 429, 502, 503, 504)
SSE_EVENT = {  # one Server-Sent Event of a streamed answer
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}


def json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(statuses: tuple[int, ...], shape: str = "Error") -> dict[str, Any]:
    return {str(s): json(ref(shape), "Error") for s in statuses}


def op(
    summary: str,
    *,
    body: str | None = None,
    body_required: bool = True,
    ok: dict[int, str | None] | None = None,
    public: bool = False,
    errors: tuple[int, ...] = (400, 401, 403, 404),
    shape: str = "Error",
    stream: bool = False,
) -> Operation:
    """One operation; ``ok`` maps success statuses to a response schema name (None: any object)."""
    responses = {
        str(status): json(ref(name) if name else ANY_OBJECT)
        for status, name in (ok or {200: None}).items()
    }
    if stream:
        responses["200"]["content"]["text/event-stream"] = {"schema": SSE_EVENT}
    op: Operation = {
        "summary": summary,
        "responses": {**responses, **error_responses(errors, shape)},
    }
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        op["security"] = []
    return op


def csv_too(op: Operation) -> Operation:
    """An operation whose 200 may also be CSV (``format=csv``)."""
    op["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return op


def path_param(name: str, pattern: str | None = None) -> list[dict[str, Any]]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return [{"name": name, "in": "path", "required": True, "schema": schema}]


def query(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "in": "query",
            "required": n in required,
            "schema": QUERY_SCHEMAS.get(n, {"type": "string"}),
        }
        for n in names
    ]


def page(summary: str, *, missing: bool = False) -> Operation:
    """A public static page of the console: HTML, or 503 text until ``make install`` built it."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"*/*": {}}},
        "503": {"description": "The console is not built", "content": text},
    }
    if missing:
        responses["404"] = {"description": "A missing file of the console", "content": text}
    return {"summary": summary, "security": [], "responses": responses}
