"""Routes that dispatch by method and answer unknown paths and methods in the error shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.asgi import Receive, Scope, Send
from lowart.errors import MethodNotAllowed, NotFound

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Handler = Callable[[Request], Awaitable[Response]]


def route(path: str, **handlers: Handler) -> Route:
    """One route per path; ``GET=…, POST=…`` name the handler of each method."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    allowed = ", ".join(sorted(by_method))

    async def endpoint(request: Request) -> Response:
        handler = by_method.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}.")
        return await handler(request)

    return Route(path, endpoint, methods=ALL_METHODS)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: an unknown path is a 404 in the caller's error shape."""
    raise NotFound(f"No route for {scope.get('method', '')} {scope.get('path', '')}.")
