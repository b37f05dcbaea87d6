"""How ``/ui`` serves the console's files: headers, client routes, a missing build, odd paths.

The browser tests (``tests/e2e/test_console.py``) use the real build; these use a small fake one.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.routing import Router

from lowart.api.console import CSP, NOT_BUILT, Console
from lowart.errors import MethodNotAllowed

INDEX = b"<!doctype html><title>console</title>"
SCRIPT = b"console.log('hi')"


def _client(root: Path) -> httpx.AsyncClient:
    app = Router(routes=Console(root).routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test")


def _build(root: Path) -> None:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (root / "favicon.svg").write_text("<svg/>")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    _build(tmp_path / "dist")
    return tmp_path / "dist"


async def test_the_page_and_its_assets_carry_the_security_headers(built: Path) -> None:
    async with _client(built) as client:
        page = await client.get("/ui")
        script = await client.get("/ui/assets/index-abc123.js")
        icon = await client.get("/ui/favicon.svg")
    assert page.status_code == 200 and page.content == INDEX
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert script.content == SCRIPT
    assert script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]
    assert icon.headers["content-type"] == "image/svg+xml"
    for response in (page, script, icon):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP


async def test_client_routes_answer_the_page_and_missing_files_404(built: Path) -> None:
    async with _client(built) as client:
        for path in ("/ui/", "/ui/users", "/ui/inbox/", "/ui/a/b/c"):
            response = await client.get(path)
            assert (response.status_code, response.content) == (200, INDEX), path
        missing = await client.get("/ui/assets/index-gone.js")
        assert missing.status_code == 404 and missing.content != INDEX
        assert missing.headers["content-security-policy"] == CSP


async def test_no_path_reaches_outside_the_build(tmp_path: Path, built: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for the web")
    async with _client(built) as client:
        for path in ("/ui/../secret.txt", "/ui/%2e%2e/secret.txt", "/ui/assets/../../secret.txt"):
            response = await client.get(path)
            assert b"not for the web" not in response.content, path


async def test_without_a_build_ui_says_how_to_build_it_then_serves_it(tmp_path: Path) -> None:
    root = tmp_path / "dist"
    async with _client(root) as client:
        response = await client.get("/ui/users")
        assert response.status_code == 503
        assert response.text == NOT_BUILT and "make install" in response.text
        assert response.headers["content-security-policy"] == CSP

        _build(root)  # built while the gateway runs: no restart needed
        assert (await client.get("/ui/users")).content == INDEX


async def test_only_reads_are_allowed(built: Path) -> None:
    async with _client(built) as client:
        assert (await client.head("/ui")).status_code == 200
        with pytest.raises(MethodNotAllowed):  # the edge middleware renders it as a 405
            await client.post("/ui")
