"""Routes that dispatch by method and answer unknown paths and methods in the error shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from lowart.api.asgi import Receive, Scope, Send
from lowart.errors import MethodNotAllowed, NotFound

Handler = Callable[[Request], Awaitable[Response]]


def route(path: str, **handlers: Handler) -> Route:
    """One route per path; ``GET=…, POST=…`` name the handler of each method."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    allowed = ", ".join(sorted(by_method))

    async def endpoint(request: Request) -> Response:
        handler = by_method.get(request.method)
        if handler is None:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here; use {allowed}.", allow=allowed
            )
        return await handler(request)

    return _every_method(path, endpoint)


def served_before(path: str, method: str) -> Route:
    """The router's side of a path that a fast path serves for ``method`` before routing: any
    other method gets 405 (not 404), in the error shape, with ``Allow``."""

    async def endpoint(request: Request) -> Response:
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {method}.", allow=method)

    return _every_method(path, endpoint)


class _AnyMethod:
    """An ASGI app around a handler: Starlette filters methods only for plain functions."""

    def __init__(self, handler: Handler) -> None:
        self._app = request_response(handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _every_method(path: str, handler: Handler) -> Route:
    """No method filter on the Route: every method reaches ``handler``, so even TRACE or an
    unknown method gets the 405 in the caller's error shape, with ``Allow``."""
    return Route(path, _AnyMethod(handler), methods=None)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: an unknown path is a 404 in the caller's error shape."""
    raise NotFound(f"No route for {scope.get('method', '')} {scope.get('path', '')}.")
