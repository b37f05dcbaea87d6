"""Every route the app serves is documented and checked: the OpenAPI document and auth agree."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.routing import Route, Router

from lowart.api.middleware import PUBLIC_PATHS
from tests.conftest import Gateway


def _served(gateway: Gateway) -> set[str]:
    """The path templates of the running app: its router's routes and its fast paths.

    Starlette's convertors (``{path:path}``) are dropped: OpenAPI templates have none.
    """
    layer = gateway.app._stack
    paths: set[str] = set()
    while layer is not None:
        if isinstance(layer, Router):
            paths |= {
                re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path)
                for r in layer.routes
                if isinstance(r, Route)
            }
            break
        fast = getattr(layer, "_routes", None)
        if isinstance(fast, dict):
            paths |= {template for template, _ in fast.values()}
        layer = getattr(layer, "app", None)
    return paths


def test_every_route_is_in_the_openapi_document(gateway: Gateway) -> None:
    document = httpx.get(gateway.url + "/openapi.json").json()
    served = _served(gateway)
    assert "/v1/chat/completions" in served and "/admin/users/quota" in served
    assert served == set(document["paths"])


def _public(document: dict[str, Any]) -> set[str]:
    """The paths whose every operation the document marks as needing no key."""
    methods = ("get", "head", "post", "put", "patch", "delete")
    return {
        path
        for path, item in document["paths"].items()
        if all(op.get("security") == [] for m, op in item.items() if m in methods)
    }


def test_public_routes_are_the_documented_ones(gateway: Gateway) -> None:
    document = httpx.get(gateway.url + "/openapi.json").json()
    # The web console is static and holds no secret: it signs in with the person's own key.
    assert _public(document) == PUBLIC_PATHS | {"/ui", "/ui/{path}"}
    for path in ("/ui", "/ui/users", "/ui/no/such/view"):
        assert httpx.get(gateway.url + path).status_code in (200, 503), path  # 503: not built


def test_every_non_public_route_refuses_anonymous_callers(gateway: Gateway) -> None:
    key = gateway.create_user()
    public = _public(httpx.get(gateway.url + "/openapi.json").json())
    for path in sorted(_served(gateway) - public):
        concrete = path.replace("{", "x").replace("}", "")
        if path == "/v1/files/{file_id}":  # no key: only a signed URL opens it, else 404
            assert httpx.get(gateway.url + concrete).status_code == 404
            continue
        anonymous = httpx.post(gateway.url + concrete)
        assert anonymous.status_code == 401, (path, anonymous.status_code)
        if path.startswith("/admin/"):
            user = httpx.post(gateway.url + concrete, headers={"authorization": f"Bearer {key}"})
            assert user.status_code == 403, path


def test_metric_labels_stay_bounded_whatever_the_request(gateway: Gateway) -> None:
    for method, path in (("PROPFIND", "/health"), ("GET", "/no/such/path/12345")):
        httpx.request(method, gateway.url + path)
    text = httpx.get(gateway.url + "/metrics").text
    assert "PROPFIND" not in text and "12345" not in text
    assert 'method="OTHER"' in text and 'route="unmatched"' in text
