"""Every route the app serves is documented and checked: the OpenAPI document and auth agree."""

from __future__ import annotations

import httpx
from starlette.routing import Route, Router

from lowart.api.middleware import PUBLIC_PATHS
from tests.conftest import Gateway


def _served(gateway: Gateway) -> set[str]:
    """The path templates of the running app: its router's routes and its fast paths."""
    layer = gateway.app._stack
    paths: set[str] = set()
    while layer is not None:
        if isinstance(layer, Router):
            paths |= {r.path for r in layer.routes if isinstance(r, Route)}
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


def test_every_non_public_route_refuses_anonymous_callers(gateway: Gateway) -> None:
    key = gateway.create_user()
    for path in sorted(_served(gateway) - PUBLIC_PATHS):
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
