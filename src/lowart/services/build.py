"""``build_services``: the services wired together from ``Settings`` (no I/O here)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.catalog.circuit import CircuitConfig, Circuits
from lowart.catalog.directory import Directory
from lowart.catalog.invalidations import InvalidationListener
from lowart.dispatch.billing import Billing
from lowart.dispatch.budgets import BudgetGate
from lowart.dispatch.flow import Dispatcher
from lowart.dispatch.health import DeploymentHealth, HealthConfig
from lowart.dispatch.rates import Rates
from lowart.dispatch.retry import RetryConfig, RetryPolicy
from lowart.dispatch.routing import Router
from lowart.formats.redaction import Redaction
from lowart.jobs.runner import JobConfig, JobRunner
from lowart.jobs.service import CHAT, IMAGES, JobService
from lowart.limits.base import settle_recovered
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.job_executor import JobExecutor
from lowart.pipeline.job_tools import JobsOfSessions, SessionsOfJobs
from lowart.pipeline.responses_book import ResponseBook
from lowart.pipeline.stages import Stages
from lowart.pipeline.transform_stage import TransformStage
from lowart.providers.http import Transport, new_session
from lowart.providers.registry import VendorTable
from lowart.providers.vendor import ProviderParts
from lowart.security.secretbox import SecretBox, SecretDecryptError
from lowart.security.signing import UrlSigner
from lowart.security.ssrf import DestinationPolicy
from lowart.services.broadcast import Broadcast
from lowart.services.budget_alerts import AlertConfig, BudgetAlerts
from lowart.services.composition import Services
from lowart.services.limits import Limits, build_limits
from lowart.services.retention import Retention
from lowart.settings import Settings
from lowart.storage.alerts import AlertRepository
from lowart.storage.audit import AuditRepository
from lowart.storage.audit_states import AdminStates
from lowart.storage.audit_trail import AuditTrail
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.files import FileRepository
from lowart.storage.filestore import FileStore
from lowart.storage.idempotency import IdempotencyStore
from lowart.storage.inflight import InstanceRepository
from lowart.storage.jobs import JobRepository
from lowart.storage.meta import MetaRepository
from lowart.storage.models import ModelRepository
from lowart.storage.prices import PriceRepository
from lowart.storage.request_logs import RequestLogRepository
from lowart.storage.responses import ResponseStore
from lowart.storage.tools import ToolRepository
from lowart.storage.transforms import TransformRepository
from lowart.storage.usage import UsageRepository
from lowart.storage.users import UserRepository
from lowart.telemetry.metrics import Metrics
from lowart.telemetry.trace_export import build_tracing
from lowart.telemetry.tracing import Tracing
from lowart.tools.loop import ToolLoop
from lowart.tools.mcp import MCPManager
from lowart.tools.sessions import Confirmations
from lowart.transforms.pool import PoolConfig, WorkerPool
from lowart.transforms.runner import Transforms
from lowart.usage.estimate import Tokenizer
from lowart.usage.inflight import InFlightRegistry
from lowart.usage.liveness import Liveness
from lowart.usage.outbox import Outbox
from lowart.usage.recorder import UsageRecorder
from lowart.usage.request_logs import RequestLogs
from lowart.watchdog import Watchdog


def retry_config(settings: Settings) -> RetryConfig:
    retry = settings.retry
    return RetryConfig(
        retries=retry.retries,
        backoff_s=retry.backoff_ms / 1000,
        backoff_max_s=retry.backoff_max_ms / 1000,
        retry_after_max_s=retry.after_max_s,
        max_attempts=retry.max_attempts,
        deadline_s=retry.request_timeout_s,
    )


def circuit_config(settings: Settings) -> CircuitConfig:
    circuit = settings.circuit
    return CircuitConfig(
        window_s=circuit.window_s,
        min_calls=circuit.min_calls,
        failure_ratio=circuit.failure_ratio,
        cooldown_s=circuit.cooldown_s,
    )


@dataclass(frozen=True)
class _Core:
    """What the dispatcher, the tools and the jobs all build on."""

    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    metrics: Metrics
    directory: Directory
    watchdog: Watchdog
    limits: Limits
    lock: asyncio.Lock
    usage: UsageRepository
    recorder: UsageRecorder
    instance_id: str
    circuits: Circuits
    router: Router
    budgets: BudgetGate
    tracing: Tracing | None  # None: tracing off (docs/operations.md, "Tracing")


def _router(settings: Settings, limits: Limits) -> Router:
    routing = settings.routing
    health = DeploymentHealth(HealthConfig(routing.latency_window_s, routing.cooling_s))
    return Router(health, limits.deployment_rpm, limits.deployment_tokens, explore=routing.explore)


def _core(
    settings: Settings,
    engine: AsyncEngine,
    master_key: str,
    vendors: VendorTable,
    clock: Callable[[], float],
) -> _Core:
    box = SecretBox(master_key)
    metrics = Metrics(multiprocess_dir=settings.metrics_dir)
    watchdog = Watchdog()
    limits = build_limits(settings, watchdog)
    directory = Directory(box.decrypt, vendors.operations())
    budgets = BudgetGate(
        limits.budgets,
        directory,
        metrics,
        tz=ZoneInfo(settings.money.budget_tz),
        currency=settings.money.currency,
        clock=clock,
    )
    lock = asyncio.Lock()
    usage = UsageRepository(engine)
    instance_id = "gw-" + secrets.token_hex(6)
    recorder = _recorder(
        settings, usage, metrics=metrics, lock=lock, limits=limits, instance_id=instance_id
    )
    return _Core(
        settings=settings,
        engine=engine,
        box=box,
        metrics=metrics,
        directory=directory,
        budgets=budgets,
        watchdog=watchdog,
        limits=limits,
        lock=lock,
        usage=usage,
        recorder=recorder,
        instance_id=instance_id,
        circuits=Circuits(circuit_config(settings)),
        router=_router(settings, limits),
        tracing=build_tracing(settings.tracing, metrics.trace_export_failures.inc),
    )


def _recorder(
    settings: Settings,
    usage: UsageRepository,
    *,
    metrics: Metrics,
    lock: asyncio.Lock,
    limits: Limits,
    instance_id: str,
) -> UsageRecorder:
    return UsageRecorder(
        usage,
        metrics,
        flush_ms=settings.usage.flush_ms,
        lock=lock,
        on_flushed=limits.quota.flushed,
        on_spent=limits.budgets.flushed,
        outbox=Outbox(settings.outbox_dir),
        inflight=InFlightRegistry(instance_id),
        checkpoint_s=settings.usage.inflight_checkpoint_s,
    )


@dataclass(frozen=True)
class _Upstream:
    """The connections out, and the files and signed URLs of what they generate."""

    session: aiohttp.ClientSession
    files: FileStore
    signer: UrlSigner
    tokenizer: Tokenizer
    dispatcher: Dispatcher


def _upstream(core: _Core, vendors: VendorTable) -> _Upstream:
    settings = core.settings
    allow_private = DestinationPolicy(settings.upstream.allow_private)
    session = new_session(allow_private, settings.upstream.pool_size)
    files = FileStore(settings.files_root, FileRepository(core.engine))
    signer = UrlSigner(
        core.box.signing_key, settings.files.url_ttl_s, settings.files.public_base_url
    )
    max_body = settings.upstream.max_body_bytes
    tokenizer = Tokenizer()
    quota = core.limits.quota
    rates = Rates(core.limits.rate_limiter, core.limits.tokens, core.metrics)
    dispatcher = Dispatcher(
        directory=core.directory,
        rates=rates,
        quota=quota,
        providers=vendors.providers(
            ProviderParts(
                Transport(session, core.watchdog, max_body, core.tracing),
                session,
                files,
                signer,
                settings.upstream.embeddings_max_answer_bytes,
            )
        ),
        recorder=core.recorder,
        billing=Billing(
            quota=quota,
            budgets=core.budgets,
            rates=rates,
            recorder=core.recorder,
            tokenizer=tokenizer,
            tokens=core.limits.deployment_tokens,
        ),
        metrics=core.metrics,
        circuits=core.circuits,
        retry=RetryPolicy(retry_config(settings)),
        router=core.router,
        default_reserve=settings.limits.quota_default_reserve,
        budgets=core.budgets,
        tracing=core.tracing,
    )
    return _Upstream(session, files, signer, tokenizer, dispatcher)


@dataclass(frozen=True)
class _Work:
    """The tool loop and the jobs, over the dispatcher."""

    tool_repo: ToolRepository
    mcp: MCPManager
    tools: ToolLoop
    confirmations: Confirmations
    job_runner: JobRunner
    jobs: JobService
    pipeline: Pipeline
    transforms: Transforms


def _transforms(settings: Settings) -> Transforms:
    config = settings.transforms
    pool = WorkerPool(
        PoolConfig(
            size=config.workers,
            timeout_ms=config.timeout_ms,
            memory_mb=config.memory_mb,
            kill_after_s=config.kill_after_ms / 1000,
            start_timeout_s=config.start_timeout_s,
        )
    )
    return Transforms(pool, config.timeout_ms)


def _work(core: _Core, dispatcher: Dispatcher) -> _Work:
    settings = core.settings
    job_repo = JobRepository(core.engine)
    tool_repo = ToolRepository(core.engine)
    mcp = MCPManager(
        call_timeout_s=settings.tools.mcp_call_timeout_s,
        destinations=DestinationPolicy(settings.upstream.allow_private),
    )
    tools = ToolLoop(
        dispatcher=dispatcher,
        manager=mcp,
        repo=tool_repo,
        max_rounds=settings.tools.max_rounds,
        session_ttl_s=settings.tools.session_ttl_s,
        tracing=core.tracing,
    )
    confirmations = Confirmations(loop=tools, repo=tool_repo, jobs=JobsOfSessions(job_repo))
    stages = Stages(dispatcher, tools)
    executor = JobExecutor(core.directory, stages, core.usage)
    job_runner = _job_runner(core, job_repo, executor, confirmations)
    jobs = JobService(job_repo, job_runner, SessionsOfJobs(tool_repo).cancel_session)
    transforms = _transforms(settings)
    pipeline = Pipeline(stages, jobs, TransformStage(transforms), traced=core.tracing is not None)
    return _Work(tool_repo, mcp, tools, confirmations, job_runner, jobs, pipeline, transforms)


def _job_runner(
    core: _Core, repo: JobRepository, executor: JobExecutor, confirmations: Confirmations
) -> JobRunner:
    settings = core.settings.jobs
    return JobRunner(
        repo=repo,
        executors=dict.fromkeys((CHAT, IMAGES), executor),
        on_beat=confirmations.expire,
        settle_usage=core.recorder.flush,
        config=JobConfig(
            lease_s=settings.lease_s,
            heartbeat_s=settings.heartbeat_s,
            poll_s=settings.poll_s,
            concurrency=settings.concurrency,
        ),
        owner=core.instance_id,
        metrics=core.metrics,
        tracing=core.tracing,
    )


def build_services(
    settings: Settings,
    engine: AsyncEngine,
    master_key: str,
    vendors: VendorTable,
    *,
    clock: Callable[[], float] = time.time,
) -> Services:
    """Wire the services together (no I/O here); ``clock`` decides prices and budget periods."""
    core = _core(settings, engine, master_key, vendors, clock)
    out = _upstream(core, vendors)
    work = _work(core, out.dispatcher)
    request_log_repo = RequestLogRepository(engine)
    return Services(
        settings=settings,
        vendors=vendors,
        engine=engine,
        box=core.box,
        metrics=core.metrics,
        users=UserRepository(engine),
        models=ModelRepository(engine),
        deployments=DeploymentRepository(engine),
        circuits=core.circuits,
        router=core.router,
        prices=PriceRepository(engine),
        usage=core.usage,
        meta=MetaRepository(engine),
        directory=core.directory,
        budgets=core.budgets,
        limits=core.limits,
        recorder=core.recorder,
        session=out.session,
        dispatcher=out.dispatcher,
        lock=core.lock,
        tokenizer=out.tokenizer,
        files=out.files,
        signer=out.signer,
        job_runner=work.job_runner,
        jobs=work.jobs,
        tool_repo=work.tool_repo,
        mcp=work.mcp,
        tools=work.tools,
        confirmations=work.confirmations,
        pipeline=work.pipeline,
        responses=ResponseBook(
            ResponseStore(
                engine,
                retention_s=settings.responses.retention_s,
                max_history=settings.responses.max_history,
            ),
            work.jobs,
        ),
        transforms=work.transforms,
        transform_repo=TransformRepository(engine),
        tracing=core.tracing,
        request_logs=_request_logs(core, request_log_repo),
        request_log_repo=request_log_repo,
        watchdog=core.watchdog,
        liveness=_liveness(core),
        idempotency=IdempotencyStore.from_settings(engine, settings),
        broadcast=Broadcast(core.limits.redis, InvalidationListener.for_settings(settings)),
        audit=audit_trail(engine, core.box),
        retention=Retention(settings, engine, out.files, core.metrics),
        alerts=_alerts(core, out.session, clock),
    )


def audit_trail(engine: AsyncEngine, box: SecretBox) -> AuditTrail:
    """The admin audit log, comparing secrets by their plain values (never recorded)."""

    def open_secret(sealed: str, context: str) -> str | None:
        try:
            return box.decrypt(sealed, context)
        except SecretDecryptError:
            return None

    return AuditTrail(AuditRepository(engine), AdminStates(engine, open_secret))


def _request_logs(core: _Core, repo: RequestLogRepository) -> RequestLogs:
    settings = core.settings.request_log
    rules = Redaction.parse(
        settings.redact_paths, settings.redact_patterns, settings.max_body_bytes
    )
    return RequestLogs(
        repo,
        rules,
        core.metrics,
        everything=settings.enabled,
        flush_ms=settings.flush_ms,
        max_queued_bytes=settings.max_queued_bytes,
    )


def _alerts(
    core: _Core, session: aiohttp.ClientSession, clock: Callable[[], float]
) -> BudgetAlerts | None:
    """The budget alerts, with ``BUDGET_WEBHOOK_URL``: through the upstream session, whose
    connections the SSRF policy checks."""
    money = core.settings.money
    if money.webhook_url is None or money.webhook_secret is None:
        return None
    config = AlertConfig(
        url=money.webhook_url,
        secret=money.webhook_secret,
        retry_s=money.webhook_retry_s,
        timeout_s=money.webhook_timeout_s,
        currency=money.currency,
        tz=core.budgets.tz,
    )
    return BudgetAlerts(AlertRepository(core.engine), core.directory, session, config, clock)


def _liveness(core: _Core) -> Liveness:
    return Liveness(
        InstanceRepository(core.engine),
        core.recorder,
        heartbeat_s=core.settings.liveness.heartbeat_s,
        dead_after_s=core.settings.liveness.dead_after_s,
        lock=core.lock,
        on_recovered=functools.partial(settle_recovered, core.limits.quota),
    )
