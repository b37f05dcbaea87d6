"""Starlette responses encoded with msgspec, and request helpers for the cold surfaces."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from lowart.api.asgi import read_body
from lowart.api.middleware import principal_of
from lowart.entries import Principal


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


async def body_of(request: Request) -> bytes:
    """The body, under the gateway's size limit."""
    return await read_body(request.scope, request.receive)


def caller(request: Request) -> Principal:
    return principal_of(request.scope)
