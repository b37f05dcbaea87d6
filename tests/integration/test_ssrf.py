"""S10/S11: the SSRF guard at registration (400) and at connect time (no byte sent), and no
redirect followed. Nothing here connects anywhere but 127.0.0.1: refused link-local and
metadata destinations come from a resolver the test controls, and are refused before any
connection is attempted.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import aiohttp
import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from lowart.security.connect_guard import GuardedConnector, guarded_transport
from lowart.security.ssrf import DestinationPolicy, ForbiddenDestination
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway
from tests.integration.test_request_allowlist import Listener
from tests.unit.test_ssrf import ALWAYS_REFUSED, PRIVATE, FakeResolver


@pytest.fixture
def listener() -> Iterator[Listener]:
    trap = Listener()
    yield trap
    trap.close()


def _register(gw: Gateway, base_url: str, vendor: str = "OpenAI") -> tuple[int, str]:
    body = {"model_id": "m-" + secrets.token_hex(4), "vendor_type": vendor, "base_url": base_url}
    response = gw.admin("POST", "/admin/models", json=body)
    return response.status_code, response.text


@pytest.mark.parametrize("vendor", ["OpenAI", "Anthropic", "ComfyUI"])
def test_registration_refuses_the_corpus_when_private_is_refused(
    make_gateway: Callable[..., Gateway], listener: Listener, vendor: str
) -> None:
    gw = make_gateway(upstream_allow_private=False)
    for url in [*ALWAYS_REFUSED, *PRIVATE, f"http://127.0.0.1:{listener.port}/v1"]:
        status, text = _register(gw, url, vendor)
        assert status == 400, (url, text)
        assert '"param":"base_url"' in text.replace(" ", ""), text
    assert listener.accepted == 0


def test_registration_by_default_allows_local_servers_only(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    for url in ALWAYS_REFUSED:
        assert _register(gw, url)[0] == 400, url
    for url in PRIVATE:
        assert _register(gw, url)[0] == 201, url
    patched = gw.admin("POST", "/admin/models", json={"model_id": "p", "vendor_type": "OpenAI"})
    assert patched.status_code == 400  # base_url is required
    gw.add_model("p2", "OpenAI", base_url="http://127.0.0.1:9/v1")
    for method in ("PATCH", "PUT"):
        body = {"vendor_type": "OpenAI", "base_url": "http://169.254.169.254/v1"}
        assert gw.admin(method, "/admin/models/p2", json=body).status_code == 400


def test_mcp_http_servers_are_checked_at_registration(
    make_gateway: Callable[..., Gateway], listener: Listener
) -> None:
    gw = make_gateway(upstream_allow_private=False)
    for url in ("http://169.254.169.254/mcp", f"http://127.0.0.1:{listener.port}/mcp"):
        body = {"name": "remote", "transport": "http", "url": url}
        response = gw.admin("POST", "/admin/mcp/servers", json=body)
        assert response.status_code == 400, response.text
        assert "url" in response.json()["error"]["message"]
    assert listener.accepted == 0


def test_a_hand_inserted_model_is_refused_at_connect_time(
    make_gateway: Callable[..., Gateway], listener: Listener
) -> None:
    """Rows edited by hand skip registration: the connect-time guard still refuses them."""
    gw = make_gateway(upstream_allow_private=False, retries=0)
    gw.sql(
        "INSERT INTO models (model_id, vendor_type, base_url, api_key) VALUES (?, ?, ?, ?)",
        ("inside", "OpenAI", f"http://127.0.0.1:{listener.port}/v1", "sk-x"),
    )
    gw.sql(
        "INSERT INTO models (model_id, vendor_type, base_url, api_key) VALUES (?, ?, ?, ?)",
        ("legacy", "OpenAI", "http://2130706433:9/v1", "sk-x"),
    )
    key = gw.create_user()
    for model in ("inside", "legacy"):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        with gw.client(key) as client:
            response = client.post("/v1/chat/completions", json=body)
            for _ in range(20):  # the directory reloads hand edits every CACHE_REFRESH_S
                if response.status_code != 404:
                    break
                gw.admin("GET", "/admin/usage")
                response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 502, response.text
    assert listener.accepted == 0


async def test_the_connector_refuses_what_a_name_resolves_to() -> None:
    """DNS answers (or a rebinding) pointing at metadata or link-local addresses are refused
    while resolving: no connection is attempted."""
    dns = FakeResolver(
        {
            "metadata.test": ["169.254.169.254"],
            "linklocal6.test": ["fe80::1"],
            "mapped.test": ["::ffff:169.254.169.254"],
        }
    )
    connector = GuardedConnector(DestinationPolicy(), resolver=dns)
    try:
        for host in ("metadata.test", "linklocal6.test", "mapped.test", "169.254.169.254"):
            with pytest.raises(ForbiddenDestination):
                await connector._resolve_host(host, 80)
        with pytest.raises(ForbiddenDestination, match="metadata name"):
            await connector._resolve_host("metadata.google.internal", 80)
    finally:
        await connector.close()


async def test_the_connector_keeps_only_allowed_answers(listener: Listener) -> None:
    dns = FakeResolver(
        {
            "mixed.test": ["169.254.169.254", "127.0.0.1"],
            "inside.test": ["127.0.0.1"],
        }
    )
    open_connector = GuardedConnector(DestinationPolicy(), resolver=dns)
    strict_connector = GuardedConnector(DestinationPolicy(allow_private=False), resolver=dns)
    try:
        answers = await open_connector._resolve_host("mixed.test", listener.port)
        assert [a["host"] for a in answers] == ["127.0.0.1"]
        async with aiohttp.ClientSession(connector=strict_connector) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.get(f"http://inside.test:{listener.port}/", allow_redirects=False)
        assert isinstance(caught.value.os_error, ForbiddenDestination)
    finally:
        await open_connector.close()
        await strict_connector.close()
    assert listener.accepted == 0


async def test_the_mcp_transport_refuses_at_connect_time(listener: Listener) -> None:
    transport = guarded_transport(DestinationPolicy(allow_private=False))
    async with httpx2.AsyncClient(transport=transport) as client:
        for url in (f"http://127.0.0.1:{listener.port}/mcp", f"http://localhost:{listener.port}/"):
            with pytest.raises(ForbiddenDestination):
                await client.get(url)
    assert listener.accepted == 0


async def _redirect(scope: Scope, receive: Receive, send: Send) -> None:
    """An upstream that answers every request with a redirect to ``REDIRECT_TARGET``."""
    if scope["type"] != "http":
        return
    location = REDIRECT_TARGET[0].encode()
    await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
    await send({"type": "http.response.body", "body": b""})


REDIRECT_TARGET: list[str] = [""]


def test_redirects_are_never_followed(
    make_gateway: Callable[..., Gateway], listener: Listener
) -> None:
    REDIRECT_TARGET[0] = f"http://127.0.0.1:{listener.port}/v1/chat/completions"
    with run_in_thread(_redirect) as upstream:
        gw = make_gateway(retries=0)
        gw.add_model("redir", "OpenAI", base_url=upstream.base_url + "/v1", api_key="sk-secret")
        key = gw.create_user()
        body = {"model": "redir", "messages": [{"role": "user", "content": "hi"}]}
        with gw.client(key) as client:
            response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 502, response.text
    assert listener.accepted == 0
