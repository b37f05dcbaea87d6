"""The composition root: ``create_app(settings)`` returns the ASGI app; its lifespan builds
every service, runs start-up work, and assembles the middleware and routes around them."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import structlog
from starlette.routing import Route, Router

from lowart.api.admin_audit import AuditRecorder, AuditRoutes
from lowart.api.admin_deployments import DeploymentAdmin
from lowart.api.admin_models import ModelAdmin
from lowart.api.admin_prices import PriceAdmin
from lowart.api.admin_teams import TeamAdmin
from lowart.api.admin_transforms import TransformAdmin
from lowart.api.admin_users import UserAdmin
from lowart.api.anthropic import TokenCounter
from lowart.api.asgi import ASGIApp, Receive, Scope, Send
from lowart.api.console import Console
from lowart.api.files import FileRoutes
from lowart.api.idempotency import IdempotencyKeys
from lowart.api.jobs import JobRoutes
from lowart.api.keys import KeyRoutes
from lowart.api.middleware import ROUTE_KEY, AuthMiddleware, EdgeMiddleware
from lowart.api.models import Models
from lowart.api.openapi import openapi_document
from lowart.api.operations import EMBEDDING, OPERATIONS
from lowart.api.ops import Ops
from lowart.api.relay import OperationEndpoint
from lowart.api.request_logs import RequestLogRoutes
from lowart.api.responses_api import ResponsesEndpoint
from lowart.api.responses_routes import ResponseRoutes
from lowart.api.routing import not_found, served_before
from lowart.api.shedding import InFlightLimit
from lowart.api.stream import WriteTimeout
from lowart.api.tools import ConfirmRoutes, ToolAdmin
from lowart.api.traced import traced_endpoint
from lowart.api.usage import UsageReports
from lowart.catalog.accounts import issue_key
from lowart.providers.registry import VendorTable
from lowart.security.forwarded import networks
from lowart.security.ssrf import DestinationPolicy
from lowart.services import Services, build_services, check_master_key, resolve_master_key
from lowart.settings import Settings
from lowart.storage.audit_trail import AuditTrail
from lowart.storage.budgets import BudgetSpend
from lowart.storage.engine import create_engine
from lowart.storage.migrate import migrate
from lowart.storage.teams import TeamRepository

log = structlog.get_logger()

Clock = Callable[[], float]
FIRST_RUN_KEY = "first_run_done"
BOOTSTRAP_ADMIN = "admin"


class FastPaths:
    """Exact-path routes served before the router (the hot path skips route matching)."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], tuple[str, ASGIApp]]) -> None:
        self.app = app
        self._routes = routes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the route's awaitable: one coroutine less per request.
        if scope["type"] == "http":
            hit = self._routes.get((scope["method"], scope["path"]))
            if hit is not None:
                scope[ROUTE_KEY] = hit[0]
                return hit[1](scope, receive, send)
        return self.app(scope, receive, send)


async def bootstrap(services: Services) -> str | None:
    """First-run work: the admin user and the vendors' starter models (Mock's ``mock``).
    Returns a generated admin key."""
    settings = services.settings
    printed = None
    if not await services.users.any_admin():
        await services.users.upsert(BOOTSTRAP_ADMIN, {"name": "Administrator", "is_admin": True})
        _, key = await issue_key(
            services.users, BOOTSTRAP_ADMIN, "bootstrap", settings.security.admin_key
        )
        if settings.security.admin_key is None:
            printed = key
    if await services.meta.put_if_absent(FIRST_RUN_KEY, "1"):
        await _starter_models(services)
    return printed


async def _starter_models(services: Services) -> None:
    for vendor in services.vendors:
        model_id = vendor.starter_model
        if model_id is not None and await services.models.get(model_id) is None:
            fields = {"vendor_type": vendor.name, "base_url": vendor.base_url.default}
            await services.models.create(model_id, fields)


def announce_admin_key(key: str, stream: TextIO) -> None:
    """Show a generated admin key, the one time it exists outside its hash."""
    stream.write(f"Generated admin key (shown once, store it now): {key}\n")
    stream.flush()


async def _prepare(services: Services, generated: bool) -> str | None:
    await check_master_key(services.meta, services.box, generated)
    return await bootstrap(services)


async def start_services(
    settings: Settings,
    *,
    prepared: bool = False,
    vendors: VendorTable | None = None,
    clock: Clock = time.time,
) -> tuple[Services, str | None]:
    """Open the database, migrate, check the master key, bootstrap, and load the caches.

    ``prepared``: the serving parent has done the start-up work already, so only open and load
    (several workers must not redo it at once). ``vendors``: the vendor table (``VENDORS``).
    ``clock``: the time that decides prices and budget periods (tests move it).
    """
    master_key, generated = resolve_master_key(settings)
    engine = create_engine(
        settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )
    try:
        if not prepared:
            await migrate(engine)
        services = build_services(
            settings, engine, master_key, vendors or VendorTable(), clock=clock
        )
        admin_key = None if prepared else await _prepare(services, generated)
        await services.refresh()
    except BaseException:
        await engine.dispose()
        raise
    return services, admin_key


def probes(services: Services) -> dict[str, Callable[[], Awaitable[None]]]:
    """What ``/ready`` checks: the database, and Redis when configured, with the invalidation
    listener's first subscription."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": services.ping_database}
    if services.limits.redis is not None:
        checks["redis"] = services.ping_redis
    if services.broadcast.listener is not None:
        checks["invalidations"] = services.broadcast.listener.check
    return checks


@dataclass(frozen=True)
class AdminOperations:
    """The admin operations on users, keys, teams, models, prices and usage: the admin routes
    and the ``lowart`` command line call the same ones."""

    users: UserAdmin
    teams: TeamAdmin
    models: ModelAdmin
    deployments: DeploymentAdmin
    prices: PriceAdmin
    usage: UsageReports
    audit: AuditTrail  # the command line's writes go through ``audit.write`` as ``CLI``
    recorder: AuditRecorder  # the routes' writes, as the admin who called


def admin_operations(services: Services) -> AdminOperations:
    refresh, settle = services.invalidate, services.settle_usage
    destinations = DestinationPolicy(services.settings.upstream.allow_private)
    trusted = networks(services.settings.security.trusted_proxies)
    recorder = AuditRecorder(services.audit, trusted)
    currency = services.settings.money.currency
    return AdminOperations(
        users=UserAdmin(services.users, refresh, settle, services.jobs.key_revoked, recorder),
        teams=TeamAdmin(TeamRepository(services.engine), refresh, recorder),
        models=ModelAdmin(
            services.models,
            services.box,
            refresh,
            destinations,
            services.vendors,
            audit=recorder,
            prices=services.prices,
        ),
        prices=PriceAdmin(services.prices, services.models, refresh, currency, audit=recorder),
        deployments=DeploymentAdmin(
            models=services.models,
            deployments=services.deployments,
            box=services.box,
            refresh=refresh,
            destinations=destinations,
            vendors=services.vendors,
            circuits=services.circuits,
            health=services.router.health,
            audit=recorder,
        ),
        usage=UsageReports(
            services.usage,
            services.users,
            settle,
            currency,
            (BudgetSpend(services.engine), services.budgets),
        ),
        audit=services.audit,
        recorder=recorder,
    )


def build_stack(services: Services) -> ASGIApp:
    """Routes behind the pure ASGI middleware."""
    write_timeout = WriteTimeout(services.watchdog, services.settings.edge.stream_write_timeout_s)
    models = Models(services.directory)
    destinations = DestinationPolicy(services.settings.upstream.allow_private)
    admin = admin_operations(services)
    routes: list[Route] = [
        *admin.users.routes(),
        *KeyRoutes(services.users, services.invalidate, services.jobs.key_revoked).routes(),
        *admin.teams.routes(),
        *admin.models.routes(),
        *admin.deployments.routes(),
        *admin.prices.routes(),
        *admin.usage.routes(),
        *TransformAdmin(
            services.transform_repo,
            services.models,
            services.transforms,
            services.invalidate,
            admin.recorder,
        ).routes(),
        *AuditRoutes(admin.audit).routes(),
        *Ops(
            services.metrics,
            probes(services),
            services.settings.security.metrics_token,
            openapi_document(services.vendors),
        ).routes(),
        *models.routes(),
        *TokenCounter(
            services.directory,
            services.tokenizer,
            services.dispatcher,
            services.settings.edge.count_tokens_max_body_bytes,
        ).routes(),
        *JobRoutes(services.jobs).routes(),
        *RequestLogRoutes(services.request_log_repo, services.request_logs.flush).routes(),
        *FileRoutes(services.files, services.signer).routes(),
        *ToolAdmin(
            services.tool_repo,
            services.mcp,
            services.box,
            services.tool_servers_changed,
            destinations=destinations,
            audit=admin.recorder,
        ).routes(),
        *ConfirmRoutes(services.confirmations).routes(),
        *ResponseRoutes(services.responses).routes(),
        *Console().routes(),
    ]
    caps = {EMBEDDING.name: services.settings.edge.embeddings_max_body_bytes}
    fast_paths: dict[tuple[str, str], tuple[str, ASGIApp]] = {
        ("POST", path): (
            path,
            traced_endpoint(
                services.tracing,
                OperationEndpoint(
                    services.pipeline, op, write_timeout, services.request_logs, caps.get(op.name)
                ),
                op,
            ),
        )
        for path, op in OPERATIONS
    }
    fast_paths["POST", "/v1/responses"] = (
        "/v1/responses",
        ResponsesEndpoint(
            services.pipeline,
            services.responses,
            services.tools,
            services.confirmations,
            write_timeout,
        ),
    )
    routes += [served_before(path, method) for method, path in fast_paths]
    # No trailing-slash redirects: Starlette builds them from the client's Host header.
    router = Router(routes=routes, default=not_found, redirect_slashes=False)
    fast = IdempotencyKeys(FastPaths(router, fast_paths), services.idempotency)
    limit = services.settings.edge.max_in_flight
    bounded = InFlightLimit(fast, limit, services.metrics) if limit > 0 else fast
    authed = AuthMiddleware(bounded, services.directory, services.budgets.clock)
    return EdgeMiddleware(authed, services.metrics, services.settings.edge.max_body_bytes)


class LowartApp:
    """The ASGI application. Nothing is built until the lifespan starts."""

    def __init__(
        self,
        settings: Settings,
        *,
        prepared: bool = False,
        vendors: VendorTable | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.prepared = prepared
        self.vendors = vendors
        self.clock = clock
        self.services: Services | None = None
        self._stack: ASGIApp | None = None

    @asynccontextmanager
    async def running(self) -> Any:
        """Start everything; on exit drain, flush and close."""
        services, admin_key = await start_services(
            self.settings, prepared=self.prepared, vendors=self.vendors, clock=self.clock
        )
        try:
            if admin_key is not None:
                announce_admin_key(admin_key, sys.stdout)
            self.services = services
            self._stack = build_stack(services)
            await services.start_tool_servers()
            services.start_background()
        except BaseException:
            await services.close()
            raise
        log.info("lowart_started", database=services.engine.dialect.name)
        try:
            yield services
        finally:
            await services.close()
            log.info("lowart_stopped")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._stack is None:
            raise RuntimeError("the gateway has not started: the server must run the lifespan")
        await self._stack(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            context = self.running()
            await context.__aenter__()
        except BaseException as exc:
            log.error("startup_failed", error=str(exc))
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        finally:
            await send({"type": "lifespan.shutdown.complete"})


def create_app(
    settings: Settings,
    *,
    prepared: bool = False,
    vendors: VendorTable | None = None,
    clock: Clock = time.time,
) -> LowartApp:
    """The gateway's ASGI app for ``settings`` (``prepared``, ``vendors``, ``clock``: see
    ``start_services``)."""
    return LowartApp(settings, prepared=prepared, vendors=vendors, clock=clock)
