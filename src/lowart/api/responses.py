"""Starlette responses encoded with msgspec, and request helpers for the cold surfaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from lowart.api.asgi import read_body
from lowart.api.middleware import principal_of
from lowart.principal import Principal


class JSON(Response):
    """A JSON response; ``raw=True`` sends bytes that are already JSON."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        raw: bool = False,
        raw_headers: Sequence[tuple[bytes, bytes]] = (),  # already encoded, added as they are
    ) -> None:
        self._raw = raw
        super().__init__(content, status_code=status_code, headers=headers)
        self.raw_headers += raw_headers

    def render(self, content: Any) -> bytes:
        if self._raw:
            return bytes(content)
        return msgspec.json.encode(content)


async def body_of(request: Request, limit: int | None = None) -> bytes:
    """The body, under the gateway's size limit (or ``limit``, when smaller)."""
    return await read_body(request.scope, request.receive, limit)


def caller(request: Request) -> Principal:
    return principal_of(request.scope)
