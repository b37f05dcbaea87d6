"""``Services``: every long-lived object of one gateway process, its background tasks in their
declared order, and the order it shuts down in."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

import aiohttp
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.catalog.circuit import Circuits
from lowart.catalog.directory import Directory
from lowart.dispatch.budgets import BudgetGate
from lowart.dispatch.flow import Dispatcher
from lowart.dispatch.routing import Router
from lowart.jobs.runner import JobRunner
from lowart.jobs.service import JobService
from lowart.money import current_periods
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.responses_book import ResponseBook
from lowart.providers.registry import VendorTable
from lowart.security.secretbox import SecretBox
from lowart.security.signing import UrlSigner
from lowart.services.background import Background, BackgroundTasks
from lowart.services.broadcast import REFRESH, TOOLS_CHANGED, Broadcast
from lowart.services.budget_alerts import BudgetAlerts
from lowart.services.limits import Limits
from lowart.services.retention import Retention
from lowart.services.tool_servers import ToolServers
from lowart.settings import Settings
from lowart.storage.audit_trail import AuditTrail
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.filestore import FileStore
from lowart.storage.idempotency import IdempotencyStore
from lowart.storage.meta import MetaRepository
from lowart.storage.models import ModelRepository
from lowart.storage.prices import PriceRepository
from lowart.storage.request_logs import RequestLogRepository
from lowart.storage.snapshot import load_snapshot
from lowart.storage.tools import ToolRepository
from lowart.storage.transforms import TransformRepository
from lowart.storage.usage import UsageRepository
from lowart.storage.users import UserRepository
from lowart.telemetry.metrics import Metrics
from lowart.telemetry.tracing import Tracing
from lowart.tools.loop import ToolLoop
from lowart.tools.mcp import MCPManager
from lowart.tools.sessions import Confirmations
from lowart.transforms.runner import Transforms
from lowart.usage.estimate import Tokenizer
from lowart.usage.liveness import Liveness
from lowart.usage.recorder import UsageRecorder
from lowart.usage.request_logs import RequestLogs
from lowart.watchdog import Watchdog

log = structlog.get_logger()


@dataclass
class Services:
    """Every long-lived object of one gateway process."""

    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    metrics: Metrics
    users: UserRepository
    models: ModelRepository
    deployments: DeploymentRepository
    circuits: Circuits
    router: Router
    prices: PriceRepository
    usage: UsageRepository
    meta: MetaRepository
    directory: Directory
    budgets: BudgetGate
    limits: Limits
    recorder: UsageRecorder
    session: aiohttp.ClientSession
    dispatcher: Dispatcher
    lock: asyncio.Lock
    tokenizer: Tokenizer
    files: FileStore
    signer: UrlSigner
    job_runner: JobRunner
    jobs: JobService
    tool_repo: ToolRepository
    mcp: MCPManager
    tools: ToolLoop
    confirmations: Confirmations
    pipeline: Pipeline
    responses: ResponseBook
    transforms: Transforms
    transform_repo: TransformRepository
    tracing: Tracing | None
    request_logs: RequestLogs
    request_log_repo: RequestLogRepository
    watchdog: Watchdog
    liveness: Liveness
    idempotency: IdempotencyStore
    broadcast: Broadcast
    vendors: VendorTable
    audit: AuditTrail
    retention: Retention
    alerts: BudgetAlerts | None = None  # with BUDGET_WEBHOOK_URL
    tool_servers: ToolServers = field(init=False)
    background: BackgroundTasks = field(init=False)

    def __post_init__(self) -> None:
        self.tool_servers = ToolServers(self.mcp, self.tool_repo, self.box)
        self.background = BackgroundTasks(self._background())

    def _background(self) -> list[Background]:
        """The tasks, in start order. The usage recorder starts first and stops last: it is
        asked to stop after the others are cancelled, and writes what they billed."""
        tasks = [
            Background("usage_recorder", self.recorder.run, stop=self.recorder.stop),
            Background("directory_refresh", self._refresh_loop),
            Background("job_runner", self.job_runner.run),
            Background("watchdog", self.watchdog.run),
            Background("liveness", self.liveness.run),
            Background("retention", self.retention.run),
            Background("request_logs", self.request_logs.run, stop=self.request_logs.stop),
        ]
        if self.alerts is not None:
            tasks.append(Background("budget_alerts", self.alerts.run))
        if self.broadcast.listener is not None:
            listen = functools.partial(self.broadcast.listen, self.refresh, self._tools_changed)
            tasks.append(Background("invalidations", listen))
        return tasks

    async def refresh(self) -> None:
        """Reload the directory from the database (serialised with usage flushes)."""
        periods = current_periods(self.budgets.clock(), self.budgets.tz)
        async with self.lock:
            snapshot = await self.limits.quota.reload(
                lambda: self.limits.budgets.reload(lambda: load_snapshot(self.engine, periods))
            )
            self.directory.apply(snapshot)
            self.transforms.table.apply(snapshot.transforms)
        self.metrics.set_models(self.directory.model_ids())
        self.metrics.set_team_budgets(self.budgets.team_standings())
        self.request_logs.models = self.directory.logged_models()

    async def invalidate(self) -> None:
        """An admin write: reload here at once, and tell every other instance to reload."""
        await self.refresh()
        await self.broadcast.publish(REFRESH)

    def _tools_changed(self) -> None:
        """Another instance changed the tool servers: follow, beside the listener."""
        self.background.spawn("tool_servers", self.tool_servers.reconcile())

    async def ping_redis(self) -> None:
        assert self.limits.redis is not None
        await self.limits.redis.ping()

    async def settle_usage(self) -> None:
        """Write every usage row now: the streams billed in the background first (an estimate
        may still be counting), then the queue."""
        await self.dispatcher.drain()
        await self.recorder.flush()

    async def ping_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.database.cache_refresh_s)
            try:
                await self.refresh()
            except Exception:  # keep serving from the last good snapshot
                log.exception("directory_refresh_failed")

    def start_background(self) -> None:
        self.background.start()

    async def start_tool_servers(self) -> None:
        """Run exactly the registered MCP servers (``ToolServers.reconcile``)."""
        await self.tool_servers.reconcile()

    async def tool_servers_changed(self) -> None:
        """An admin registered or deleted a tool server here: the other instances follow."""
        await self.broadcast.publish(TOOLS_CHANGED)

    async def close(self) -> None:
        """Hand running jobs back, drain billing, stop the background tasks (the usage recorder
        last, writing what is left), then release connections."""
        await self.job_runner.stop()
        await self.mcp.close()
        await self.dispatcher.drain()
        await self.transforms.pool.close()
        await self.background.stop()
        if self.tracing is not None:  # bounded by TRACE_SHUTDOWN_FLUSH_S
            await self.tracing.shutdown()
        await self.session.close()
        await self.limits.close()
        await self.broadcast.close()
        await self.engine.dispose()
