"""The composition root's parts: every long-lived service, built from ``Settings`` at start-up."""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import stat
from dataclasses import dataclass, field

import aiohttp
import redis.asyncio as aioredis
import sqlalchemy as sa
import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.catalog.circuit import CircuitConfig, Circuits
from lowart.catalog.directory import Directory
from lowart.catalog.invalidations import CHANNEL, InvalidationListener
from lowart.dispatch.billing import Billing
from lowart.dispatch.flow import Dispatcher
from lowart.dispatch.retry import RetryConfig, RetryPolicy
from lowart.errors import StartupError
from lowart.jobs.runner import JobConfig, JobRunner
from lowart.jobs.service import CHAT, IMAGES, JobService
from lowart.limits.base import QuotaLedger, RateLimiter, settle_recovered
from lowart.limits.memory import MemoryQuotaLedger, MemoryRateLimiter
from lowart.limits.redis import RedisRateLimiter, connect
from lowart.limits.redis_quota import RedisQuotaLedger
from lowart.limits.resp import RespClient
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.job_executor import JobExecutor
from lowart.pipeline.job_tools import JobsOfSessions, SessionsOfJobs
from lowart.pipeline.stages import Stages
from lowart.providers.comfyui import ComfyUIClient
from lowart.providers.http import Transport, new_session
from lowart.providers.images import ComfyUIProvider
from lowart.providers.registry import build_providers
from lowart.security.secretbox import (
    CHECK_PLAINTEXT,
    SecretBox,
    SecretDecryptError,
    generate_master_key,
)
from lowart.security.signing import UrlSigner
from lowart.security.ssrf import DestinationPolicy
from lowart.settings import Settings
from lowart.storage.files import FileRepository
from lowart.storage.filestore import FileStore
from lowart.storage.idempotency import IdempotencyStore
from lowart.storage.inflight import InstanceRepository
from lowart.storage.jobs import JobRepository
from lowart.storage.meta import MetaRepository
from lowart.storage.models import ModelRepository
from lowart.storage.snapshot import load_snapshot
from lowart.storage.tools import ServerRow, ToolRepository
from lowart.storage.usage import UsageRepository
from lowart.storage.users import UserRepository
from lowart.telemetry.metrics import Metrics
from lowart.tools.loop import ToolLoop
from lowart.tools.mcp import MCPManager
from lowart.tools.mcp_server import ToolCallError
from lowart.tools.servers import server_config
from lowart.tools.sessions import Confirmations
from lowart.usage.estimate import Tokenizer
from lowart.usage.inflight import InFlightRegistry
from lowart.usage.liveness import Liveness
from lowart.usage.outbox import Outbox
from lowart.usage.recorder import UsageRecorder
from lowart.watchdog import Watchdog

log = structlog.get_logger()

REFRESH = "refresh"  # users, keys or models changed
TOOLS_CHANGED = "tools"  # MCP servers registered or deleted

MASTER_CHECK_KEY = "master_key_check"
MASTER_CHECK_CONTEXT = "gateway_meta:master_key_check"


def resolve_master_key(settings: Settings) -> tuple[str, bool]:
    """The master key, from ``MASTER_KEY`` or (SQLite) ``lowart.key``. True if generated now."""
    if settings.master_key:
        return settings.master_key, False
    if not settings.is_sqlite:
        raise StartupError("MASTER_KEY must be set when DATABASE_URL is PostgreSQL")
    path = settings.key_file
    if path.exists():
        key = path.read_text().strip()
        if len(key) < 32:
            raise StartupError(f"{path} holds no usable master key (32+ characters expected)")
        return key, False
    key = generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True


async def check_master_key(meta: MetaRepository, box: SecretBox, generated: bool) -> None:
    """Refuse to start when the database's secrets were sealed under another master key."""
    stored = await meta.get(MASTER_CHECK_KEY)
    if stored is None:
        sealed = box.encrypt(CHECK_PLAINTEXT, MASTER_CHECK_CONTEXT)
        await meta.put_if_absent(MASTER_CHECK_KEY, sealed)
        return
    try:
        ok = box.decrypt(stored, MASTER_CHECK_CONTEXT) == CHECK_PLAINTEXT
    except SecretDecryptError:
        ok = False
    if not ok:
        hint = (
            (
                " (lowart.key was missing, so a new key was generated: restore the old file "
                "or set MASTER_KEY)"
            )
            if generated
            else ""
        )
        raise StartupError(
            "The database holds secrets encrypted under a different master key; "
            f"refusing to start with this MASTER_KEY{hint}."
        )


@dataclass
class Services:
    """Every long-lived object of one gateway process."""

    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    metrics: Metrics
    users: UserRepository
    models: ModelRepository
    usage: UsageRepository
    meta: MetaRepository
    directory: Directory
    rate_limiter: RateLimiter
    quota: QuotaLedger
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
    watchdog: Watchdog
    liveness: Liveness
    idempotency: IdempotencyStore
    redis: aioredis.Redis | None = None
    scripts: RespClient | None = None
    invalidations: InvalidationListener | None = None  # with Redis: the pub/sub listener
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def refresh(self) -> None:
        """Reload the directory from the database (serialised with usage flushes)."""
        async with self.lock:
            snapshot = await self.quota.reload(lambda: load_snapshot(self.engine))
            self.directory.apply(snapshot)
        self.metrics.set_models(self.directory.model_ids())

    async def invalidate(self) -> None:
        """An admin write: reload here at once, and tell every other instance to reload."""
        await self.refresh()
        await self._publish(REFRESH)

    async def _publish(self, message: str) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.publish(CHANNEL, message)
        except (RedisError, OSError, TimeoutError):  # the others refresh on their timer
            log.warning("invalidation_publish_failed", message=message)

    async def _invalidated(self, data: bytes) -> None:
        """Another instance changed users, keys or models (reload), or tool servers."""
        if data == TOOLS_CHANGED.encode():  # may take seconds: not in the listener's way
            self.tasks.append(asyncio.create_task(self.start_tool_servers()))
        else:
            await self.refresh()

    async def ping_redis(self) -> None:
        assert self.redis is not None
        await self.redis.ping()

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
            await asyncio.sleep(self.settings.cache_refresh_s)
            try:
                await self.refresh()
            except Exception:  # keep serving from the last good snapshot
                log.exception("directory_refresh_failed")

    def start_background(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self.recorder.run()))
        self.tasks.append(loop.create_task(self._refresh_loop()))
        self.tasks.append(loop.create_task(self.job_runner.run()))
        self.tasks.append(loop.create_task(self.watchdog.run()))
        self.tasks.append(loop.create_task(self.liveness.run()))
        self.tasks.append(loop.create_task(self.idempotency.run_sweeps()))
        if self.invalidations is not None:
            listening = self.invalidations.run(self.refresh, self._invalidated)
            self.tasks.append(loop.create_task(listening))

    async def start_tool_servers(self) -> None:
        """Run exactly the registered MCP servers, starting them together: at start-up, and
        when another instance registered, changed or deleted one. One that fails is logged,
        shows ``failed`` and keeps being retried; it never stops the gateway."""

        async def start(row: ServerRow) -> None:
            try:
                await self.mcp.start(server_config(row, self.box), keep_retrying=True)
            except ToolCallError as exc:  # one broken tool server must not stop the gateway
                log.warning("mcp_server_start_failed", server=row.name, error=str(exc))

        rows = await self.tool_repo.servers()
        running = self.mcp.running()
        for name in running.keys() - {row.name for row in rows}:
            await self.mcp.stop(name)
        changed = [r for r in rows if running.get(r.name) != server_config(r, self.box)]
        await asyncio.gather(*(start(row) for row in changed))

    async def tool_servers_changed(self) -> None:
        """An admin registered or deleted a tool server here: the other instances follow."""
        await self._publish(TOOLS_CHANGED)

    async def close(self) -> None:
        """Hand running jobs back, drain billing, flush usage, release connections."""
        await self.job_runner.stop()
        await self.mcp.close()
        await self.dispatcher.drain()
        for task in self.tasks[1:]:
            task.cancel()
        await self.recorder.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.scripts is not None:
            await self.scripts.close()
        if self.invalidations is not None:
            await self.invalidations.close()
        await self.engine.dispose()


@dataclass(frozen=True)
class Limits:
    """The RPM limiter and the quota ledger: in-process, or shared through Redis."""

    redis: aioredis.Redis | None  # pub/sub, /ready
    scripts: RespClient | None  # the hot path's scripts
    rate_limiter: RateLimiter
    quota: QuotaLedger


def build_limits(settings: Settings, watchdog: Watchdog) -> Limits:
    """In-process without ``REDIS_URL``; shared through Redis with it."""
    local_rpm = MemoryRateLimiter(settings.rpm_window_s)
    local_quota = MemoryQuotaLedger()
    if settings.redis_url is None:
        return Limits(None, None, local_rpm, local_quota)
    timeout_s = settings.redis_timeout_ms / 1000
    client = connect(settings.redis_url, timeout_s)
    scripts = RespClient(settings.redis_url, timeout_s, watchdog)
    degraded = settings.redis_failure_mode == "degraded"
    quota = RedisQuotaLedger(
        scripts,
        local_quota,
        lease_s=settings.quota_lease_s,
        pending_ttl_s=settings.quota_pending_ttl_s,
        degraded=degraded,
    )
    rpm = RedisRateLimiter(scripts, settings.rpm_window_s, fallback=local_rpm if degraded else None)
    return Limits(client, scripts, rpm, quota)


def retry_config(settings: Settings) -> RetryConfig:
    return RetryConfig(
        retries=settings.retries,
        backoff_s=settings.retry_backoff_ms / 1000,
        backoff_max_s=settings.retry_backoff_max_ms / 1000,
        retry_after_max_s=settings.retry_after_max_s,
        max_attempts=settings.max_attempts,
        deadline_s=settings.request_timeout_s,
    )


def circuit_config(settings: Settings) -> CircuitConfig:
    return CircuitConfig(
        window_s=settings.circuit_window_s,
        min_calls=settings.circuit_min_calls,
        failure_ratio=settings.circuit_failure_ratio,
        cooldown_s=settings.circuit_cooldown_s,
    )


def build_services(settings: Settings, engine: AsyncEngine, master_key: str) -> Services:
    """Wire the services together (no I/O here)."""
    box = SecretBox(master_key)
    metrics = Metrics(multiprocess_dir=settings.metrics_dir)
    directory = Directory(box.decrypt)
    watchdog = Watchdog()
    limits = build_limits(settings, watchdog)
    quota = limits.quota
    lock = asyncio.Lock()
    usage = UsageRepository(engine)
    instance_id = "gw-" + secrets.token_hex(6)
    recorder = UsageRecorder(
        usage,
        metrics,
        flush_ms=settings.usage_flush_ms,
        lock=lock,
        on_flushed=quota.flushed,
        outbox=Outbox(settings.outbox_dir),
        inflight=InFlightRegistry(instance_id),
        checkpoint_s=settings.inflight_checkpoint_s,
    )
    session = new_session(
        DestinationPolicy(settings.upstream_allow_private), settings.upstream_pool_size
    )
    files = FileStore(settings.files_root, FileRepository(engine))
    signer = UrlSigner(box.signing_key, settings.file_url_ttl_s, settings.public_base_url)
    tokenizer = Tokenizer()
    dispatcher = Dispatcher(
        directory=directory,
        rate_limiter=limits.rate_limiter,
        quota=quota,
        providers=build_providers(
            Transport(session, watchdog, settings.upstream_max_body_bytes),
            ComfyUIProvider(
                ComfyUIClient(
                    session, "lowart-" + secrets.token_hex(6), settings.upstream_max_body_bytes
                ),
                files,
                signer,
            ),
        ),
        recorder=recorder,
        billing=Billing(quota=quota, recorder=recorder, tokenizer=tokenizer),
        metrics=metrics,
        circuits=Circuits(circuit_config(settings)),
        retry=RetryPolicy(retry_config(settings)),
        default_reserve=settings.quota_default_reserve,
    )
    job_repo = JobRepository(engine)
    tool_repo = ToolRepository(engine)
    mcp = MCPManager(
        call_timeout_s=settings.mcp_call_timeout_s,
        destinations=DestinationPolicy(settings.upstream_allow_private),
    )
    tools = ToolLoop(
        dispatcher=dispatcher,
        manager=mcp,
        repo=tool_repo,
        max_rounds=settings.max_tool_rounds,
        session_ttl_s=settings.tool_session_ttl_s,
    )
    confirmations = Confirmations(loop=tools, repo=tool_repo, jobs=JobsOfSessions(job_repo))
    stages = Stages(dispatcher, tools)
    job_runner = JobRunner(
        repo=job_repo,
        executors=dict.fromkeys((CHAT, IMAGES), JobExecutor(directory, stages, usage)),
        on_beat=confirmations.expire,
        settle_usage=recorder.flush,
        config=JobConfig(
            lease_s=settings.job_lease_s,
            heartbeat_s=settings.job_heartbeat_s,
            poll_s=settings.job_poll_s,
            concurrency=settings.job_concurrency,
        ),
        owner=instance_id,
        metrics=metrics,
    )
    jobs = JobService(job_repo, job_runner, SessionsOfJobs(tool_repo).cancel_session)
    return Services(
        settings=settings,
        engine=engine,
        box=box,
        metrics=metrics,
        users=UserRepository(engine),
        models=ModelRepository(engine),
        usage=usage,
        meta=MetaRepository(engine),
        directory=directory,
        rate_limiter=limits.rate_limiter,
        quota=quota,
        recorder=recorder,
        session=session,
        dispatcher=dispatcher,
        lock=lock,
        tokenizer=tokenizer,
        files=files,
        signer=signer,
        job_runner=job_runner,
        jobs=jobs,
        tool_repo=tool_repo,
        mcp=mcp,
        tools=tools,
        confirmations=confirmations,
        pipeline=Pipeline(stages, jobs),
        watchdog=watchdog,
        liveness=Liveness(
            InstanceRepository(engine),
            recorder,
            heartbeat_s=settings.instance_heartbeat_s,
            dead_after_s=settings.instance_dead_after_s,
            lock=lock,
            on_recovered=functools.partial(settle_recovered, quota),
        ),
        idempotency=IdempotencyStore.from_settings(engine, settings),
        redis=limits.redis,
        scripts=limits.scripts,
        invalidations=InvalidationListener.for_settings(settings),
    )
