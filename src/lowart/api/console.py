"""The web console: the built single-page app (``web/``) served at ``/ui`` under a strict CSP.

The console is static: it holds no secret and calls only the public API with the key the person
signs in with, so ``/ui`` needs no key. Client routes (``/ui/users``) answer ``index.html``.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.routing import route

log = structlog.get_logger()

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "ui" / "dist"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
NOT_BUILT = (
    "The Lowart web console is not built.\n"
    "Run `make install` (it needs Node.js and npm) and restart the gateway.\n"
)
_INDEX = "index.html"
_HASHED = "assets/"  # Vite's content-hashed output: safe to cache for good
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def load_bundle(root: Path) -> dict[str, bytes] | None:
    """Every file of a built console by its relative path, or None when there is no build.

    Read once into memory (a few hundred kilobytes), so no request touches the disk and no
    request path is ever joined to a filesystem path.
    """
    if not (root / _INDEX).is_file():
        return None
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


class Console:
    """``GET /ui`` and ``GET /ui/{path}``: the console's files, or a 503 until it is built."""

    def __init__(self, root: Path = CONSOLE_DIR) -> None:
        self._root = root
        self._files = load_bundle(root)
        if self._files is None:
            log.warning("console_not_built", path=str(root), hint="run make install")

    async def _bundle(self) -> dict[str, bytes] | None:
        if self._files is None:  # built after start-up: pick it up without a restart
            self._files = await asyncio.to_thread(load_bundle, self._root)
        return self._files

    async def page(self, request: Request) -> Response:
        files = await self._bundle()
        if files is None:
            return _response(503, NOT_BUILT.encode(), "text/plain; charset=utf-8", "no-store")
        name = str(request.path_params.get("path", "")).strip("/")
        body = files.get(name) if name else None
        if body is not None:
            cache = (
                "public, max-age=31536000, immutable" if name.startswith(_HASHED) else "no-cache"
            )
            return _response(200, body, _content_type(name), cache)
        if "." in name.rsplit("/", 1)[-1]:  # a missing file, never the page in its place
            return _response(404, b"Not found.\n", "text/plain; charset=utf-8", "no-store")
        return _response(200, files[_INDEX], _TYPES[".html"], "no-cache")

    def routes(self) -> list[Route]:
        return [
            route("/ui", GET=self.page, HEAD=self.page),
            route("/ui/{path:path}", GET=self.page, HEAD=self.page),
        ]


def _response(status: int, body: bytes, content_type: str, cache: str) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": cache}
    return Response(body, status_code=status, media_type=content_type, headers=headers)
