"""Settings: parsed once from the environment into one frozen object of groups, then passed down.

Each group is a dataclass of :mod:`lowart.settings.serving` or :mod:`lowart.settings.work`
whose fields declare their variable, default and documentation; :meth:`Settings.from_env` reads
every group the same way, then refuses combinations that cannot work.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowart.errors import StartupError
from lowart.settings.declare import SPEC, Spec
from lowart.settings.observe import RequestLogSettings, TracingSettings
from lowart.settings.serving import (
    DatabaseSettings,
    EdgeSettings,
    FileSettings,
    LogSettings,
    RedisSettings,
    SecuritySettings,
    ServerSettings,
)
from lowart.settings.work import (
    CircuitSettings,
    IdempotencySettings,
    JobSettings,
    LimitSettings,
    LivenessSettings,
    MoneySettings,
    ResponseSettings,
    RetentionSettings,
    RetrySettings,
    RoutingSettings,
    ToolSettings,
    TransformSettings,
    UpstreamSettings,
    UsageSettings,
)


@dataclass(frozen=True)
class Settings:
    """Every setting of the gateway, by group. Durations are seconds unless the name says
    otherwise."""

    server: ServerSettings = field(default_factory=ServerSettings)
    log: LogSettings = field(default_factory=LogSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    usage: UsageSettings = field(default_factory=UsageSettings)
    money: MoneySettings = field(default_factory=MoneySettings)
    liveness: LivenessSettings = field(default_factory=LivenessSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    files: FileSettings = field(default_factory=FileSettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    idempotency: IdempotencySettings = field(default_factory=IdempotencySettings)
    responses: ResponseSettings = field(default_factory=ResponseSettings)
    transforms: TransformSettings = field(default_factory=TransformSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    request_log: RequestLogSettings = field(default_factory=RequestLogSettings)

    @property
    def files_root(self) -> Path:
        """Where stored files go (relative paths are under the working directory)."""
        return self.server.workdir / self.files.dir

    @property
    def outbox_dir(self) -> Path:
        """Where usage the database refused waits to be written."""
        return self.server.workdir / "lowart-outbox"

    @property
    def metrics_dir(self) -> Path | None:
        """Where the workers' metric files go, with ``WORKERS`` above 1 (None otherwise)."""
        return self.server.workdir / "lowart-metrics" if self.server.workers > 1 else None

    @property
    def key_file(self) -> Path:
        """Where a generated master key lives (SQLite only)."""
        return self.server.workdir / "lowart.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting from environment variables."""
        env = os.environ if env is None else env
        groups = {name: _read_group(type(group), env) for name, group in cls().groups()}
        settings = cls(**groups)
        settings.validate()
        return settings

    def groups(self) -> Iterator[tuple[str, Any]]:
        """Each group's name (the attribute) and value, in declared order."""
        for group in dataclasses.fields(self):
            yield group.name, getattr(self, group.name)

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed, each named by its variable in lower case
        (``job_poll_s=0.05``, ``lowart_workdir=path``). Values are taken as they are: neither
        parsed nor validated (tests and the benchmark build settings this way)."""
        by_group: dict[str, dict[str, object]] = {}
        for key, value in changes.items():
            group, name = _locate(self, key)
            by_group.setdefault(group, {})[name] = value
        new = {
            group: dataclasses.replace(getattr(self, group), **values)
            for group, values in by_group.items()
        }
        return dataclasses.replace(self, **new)

    def validate(self) -> None:
        """Refuse combinations that cannot work."""
        self._validate_database()
        if self.retry.retries < 0 or self.retry.max_attempts < 1:
            raise StartupError("RETRIES must be 0 or more and MAX_ATTEMPTS at least 1")
        if not 0 < self.circuit.failure_ratio <= 1:
            raise StartupError("CIRCUIT_FAILURE_RATIO must be in (0, 1]")
        if not 0 <= self.routing.explore <= 1:
            raise StartupError("ROUTING_EXPLORE must be in [0, 1]")
        if self.jobs.heartbeat_s >= self.jobs.lease_s:
            raise StartupError("JOB_HEARTBEAT_S must be shorter than JOB_LEASE_S")
        if self.server.workers < 1:
            raise StartupError("WORKERS must be at least 1")
        self._validate_liveness()
        if self.server.workers > 1 and self.redis.url is None:
            raise StartupError("WORKERS > 1 needs REDIS_URL: limits and quotas must be shared")
        if self.redis.failure_mode not in {"closed", "degraded"}:
            raise StartupError("REDIS_FAILURE_MODE must be closed or degraded")
        if self.log.format not in {"console", "json"}:
            raise StartupError("LOG_FORMAT must be console or json")
        self._validate_positive()
        self._validate_retention()
        try:
            re.compile(self.request_log.redact_patterns)
        except re.error as exc:
            raise StartupError(
                f"REQUEST_LOG_REDACT_PATTERNS is not a regular expression: {exc}"
            ) from exc
        self._validate_money()

    def _validate_money(self) -> None:
        money = self.money
        if money.webhook_url is None:
            return
        if not money.webhook_url.startswith(("http://", "https://")):
            raise StartupError("BUDGET_WEBHOOK_URL must be an http:// or https:// URL")
        if money.webhook_secret is None:
            raise StartupError("BUDGET_WEBHOOK_URL needs BUDGET_WEBHOOK_SECRET to sign alerts")
        if money.webhook_retry_s <= 0 or money.webhook_timeout_s <= 0:
            raise StartupError("BUDGET_WEBHOOK_RETRY_S and BUDGET_WEBHOOK_TIMEOUT_S must be > 0")

    def _validate_positive(self) -> None:
        positive = {
            "COUNT_TOKENS_MAX_BODY_BYTES": self.edge.count_tokens_max_body_bytes,
            "HEADER_TIMEOUT_S": self.server.header_timeout_s,
            "BODY_TIMEOUT_S": self.server.body_timeout_s,
            "UPSTREAM_MAX_BODY_BYTES": self.upstream.max_body_bytes,
            "EMBEDDINGS_MAX_BODY_BYTES": self.edge.embeddings_max_body_bytes,
            "EMBEDDINGS_MAX_ANSWER_BYTES": self.upstream.embeddings_max_answer_bytes,
            "IDEMPOTENCY_TTL_S": self.idempotency.ttl_s,
            "IDEMPOTENCY_LEASE_S": self.idempotency.lease_s,
            "RESPONSES_RETENTION_S": self.responses.retention_s,
            "RESPONSES_MAX_HISTORY": self.responses.max_history,
            "TRANSFORM_WORKERS": self.transforms.workers,
            "TRANSFORM_TIMEOUT_MS": self.transforms.timeout_ms,
            "TRANSFORM_MEMORY_MB": self.transforms.memory_mb,
            "TRANSFORM_KILL_AFTER_MS": self.transforms.kill_after_ms,
            "TRANSFORM_START_TIMEOUT_S": self.transforms.start_timeout_s,
            "RETENTION_SWEEP_S": self.retention.sweep_s,
            "RETENTION_BATCH": self.retention.batch,
            "OTEL_BSP_MAX_QUEUE_SIZE": self.tracing.max_queue_size,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": self.tracing.max_export_batch_size,
            "OTEL_EXPORTER_OTLP_TIMEOUT": self.tracing.export_timeout_ms,
            "TRACE_SHUTDOWN_FLUSH_S": self.tracing.shutdown_flush_s,
            "REQUEST_LOG_MAX_BODY_BYTES": self.request_log.max_body_bytes,
            "REQUEST_LOG_MAX_QUEUED_BYTES": self.request_log.max_queued_bytes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise StartupError(f"{name} must be positive")

    def _validate_retention(self) -> None:
        kept = dataclasses.asdict(self.retention)
        if any(value < 0 for name, value in kept.items() if name.endswith("_s")):
            raise StartupError(
                "retention periods (…_RETENTION_S, RETENTION_PAUSE_S) cannot be negative"
            )

    def _validate_liveness(self) -> None:
        if self.usage.inflight_checkpoint_s <= 0 or self.liveness.heartbeat_s <= 0:
            raise StartupError("INFLIGHT_CHECKPOINT_S and INSTANCE_HEARTBEAT_S must be positive")
        if self.liveness.heartbeat_s >= self.liveness.dead_after_s:
            raise StartupError("INSTANCE_HEARTBEAT_S must be shorter than INSTANCE_DEAD_AFTER_S")

    def _validate_database(self) -> None:
        database = self.database
        if not (database.is_sqlite or database.url.startswith(("postgresql", "postgres"))):
            raise StartupError("DATABASE_URL must be sqlite:///… or postgresql://…")
        if not database.is_sqlite and self.security.master_key is None:
            raise StartupError("MASTER_KEY must be set when DATABASE_URL is PostgreSQL")
        if database.sqlite_busy_timeout_ms < 0:
            raise StartupError("SQLITE_BUSY_TIMEOUT_MS must be 0 or more")


def spec(item: dataclasses.Field[Any]) -> Spec:
    """The declaration of one setting's field."""
    declared = item.metadata[SPEC]
    assert isinstance(declared, Spec)
    return declared


def _read_group(group: type[Any], env: Mapping[str, str]) -> Any:
    """One group from ``env``: a variable unset (or blank, unless refused) keeps its default."""
    values: dict[str, object] = {}
    for item in dataclasses.fields(group):
        declared = spec(item)
        raw = env.get(declared.env)
        if raw is None or (not raw.strip() and declared.blank_is_default):
            continue
        values[item.name] = declared.parse(declared.env, raw.strip())
    return group(**values)


def _locate(settings: Settings, key: str) -> tuple[str, str]:
    """The group and field of the setting whose variable is ``key`` in upper case."""
    for name, group in settings.groups():
        for item in dataclasses.fields(group):
            if spec(item).env == key.upper():
                return name, item.name
    raise TypeError(f"no setting is read from {key.upper()}")
