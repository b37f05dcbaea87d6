"""Pure ASGI middleware: request ids, timing metrics, error rendering, and authentication."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog

from lowart.api.asgi import MAX_BODY_KEY, ASGIApp, Message, Receive, Scope, Send, header
from lowart.api.errors import is_anthropic_path, render
from lowart.catalog.directory import Directory
from lowart.errors import AuthError, LowartError, PermissionDenied
from lowart.principal import Principal
from lowart.storage.rows import iso_seconds
from lowart.telemetry.metrics import Metrics

log = structlog.get_logger()

PRINCIPAL_KEY = "lowart.principal"
ROUTE_KEY = "lowart.route"
REQUEST_ID_KEY = "lowart.request_id"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/metrics"})
PROTECTED_PREFIXES = ("/v1/", "/admin/")
SIGNED_PREFIX = "/v1/files/"  # without a key, the route checks the URL's signature instead
_ADMIN_PREFIX = "/admin/"


def route_template(scope: Scope) -> str:
    """The matched route's template, never the raw path (bounded metric labels)."""
    template = scope.get(ROUTE_KEY)
    if template is not None:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class EdgeMiddleware:
    """Gives every response an ``x-request-id``, times it, and renders escaped errors."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self._metrics = metrics
        self._max_body = max_body_bytes
        # Request ids must be unique, not secret: a random process prefix and a counter are
        # cheaper than a system call per request.
        self._id_prefix = "req_" + secrets.token_hex(6)
        self._ids = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{self._id_prefix}{next(self._ids):012x}"
        scope[REQUEST_ID_KEY] = request_id
        scope[MAX_BODY_KEY] = self._max_body
        ids = [(b"x-request-id", request_id.encode())]
        if is_anthropic_path(scope["path"]):
            ids.append((b"request-id", request_id.encode()))  # what the Anthropic SDKs read
        started = time.perf_counter()
        status = 0  # no response started yet

        def send_with_id(message: Message) -> Awaitable[None]:
            # A plain function handing back send's awaitable: no coroutine of its own per send.
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *ids]
            return send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if not isinstance(exc, LowartError):
                log.exception("unhandled_error", request_id=request_id, path=scope.get("path"))
                exc = LowartError("The gateway hit an internal error.")
            if not status:  # once started, too late for a status: streams end with an event
                status, headers, body = render(exc, scope.get("path", ""))
                await send(
                    {"type": "http.response.start", "status": status, "headers": [*headers, *ids]}
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"  # bounded labels
            self._metrics.time(
                self._metrics.http_duration,
                time.perf_counter() - started,
                method,
                route_template(scope),
                str(status or 500),
            )


def presented_key(scope: Scope) -> str | None:
    """The key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = header(scope, b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    api_key = header(scope, b"x-api-key")
    return api_key.decode("latin-1").strip() or None if api_key is not None else None


class AuthMiddleware:
    """Default-deny: every ``/v1/*`` and ``/admin/*`` route needs a live key; admin needs admin."""

    def __init__(
        self, app: ASGIApp, directory: Directory, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self._directory = directory
        self._clock = clock

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the app's awaitable: one coroutine less per request
        # (a refusal raises here, inside the caller's ``await``).
        if self._protected(scope):
            scope[PRINCIPAL_KEY] = self.authenticate(scope)
        return self.app(scope, receive, send)

    @staticmethod
    def _protected(scope: Scope) -> bool:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS:
            return False
        if path.startswith(SIGNED_PREFIX) and presented_key(scope) is None:
            return False  # the file route checks the URL's signature, or answers 404
        return bool(path.startswith(PROTECTED_PREFIXES))

    def authenticate(self, scope: Scope) -> Principal:
        key = presented_key(scope)
        principal = self._directory.principal(key) if key else None
        if principal is None:
            raise AuthError("Invalid API key." if key else "Missing API key.")
        if principal.expires_at is not None and principal.expires_at <= self._clock():
            raise AuthError(f"This API key expired at {iso_seconds(principal.expires_at)}.")
        if not principal.active:
            raise PermissionDenied("This user is disabled.")
        if scope["path"].startswith(_ADMIN_PREFIX) and not principal.is_admin:
            raise PermissionDenied("This route needs an admin key.")
        return principal


def principal_of(scope: Scope) -> Principal:
    """The authenticated caller (set by ``AuthMiddleware``)."""
    principal = scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise AuthError("Missing API key.")
    return principal
