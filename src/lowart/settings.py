"""Settings: parsed once from the environment into one frozen object, then passed down."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lowart.errors import StartupError

_MIN_ADMIN_KEY = 20
MIN_MASTER_KEY = 32


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise StartupError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise StartupError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise StartupError(f"{name} must be true or false, got {raw!r}")


def _octal(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw, 8)
    except ValueError as exc:
        raise StartupError(f"{name} must be an octal mode such as 0660, got {raw!r}") from exc


def _secret(env: Mapping[str, str], name: str, minimum: int) -> str | None:
    """A secret that is unset (None), or set and long enough: a set but empty or blank one is
    refused, never taken as unset (an unexpanded ``$VAR`` must not quietly generate a key)."""
    if name not in env:
        return None
    value = env[name].strip()
    if len(value) < minimum:
        raise StartupError(f"{name} must be at least {minimum} characters long")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return raw or None


@dataclass(frozen=True)
class Settings:
    """Every setting of the gateway. Durations are seconds unless the name says otherwise."""

    host: str = "127.0.0.1"
    port: int = 8080
    listen_mode: str = "TCP"
    uds_path: str = "./lowart.sock"
    uds_mode: int = 0o660
    database_url: str = "sqlite:///lowart.db"
    sqlite_busy_timeout_ms: int = 5000
    redis_url: str | None = None
    master_key: str | None = None
    admin_key: str | None = None
    workers: int = 1
    public_base_url: str | None = None
    metrics_token: str | None = None
    log_level: str = "info"
    log_format: str = "console"
    max_body_bytes: int = 32 * 1024 * 1024
    count_tokens_max_body_bytes: int = 2 * 1024 * 1024
    max_in_flight: int = 0  # 0: no cap
    stream_write_timeout_s: float = 60.0
    upstream_pool_size: int = 1024
    upstream_max_body_bytes: int = 32 * 1024 * 1024  # a whole upstream answer read into memory
    shutdown_grace_s: float = 30.0
    usage_flush_ms: int = 100
    cache_refresh_s: float = 2.0
    rpm_window_s: float = 60.0
    quota_default_reserve: int = 1000
    quota_lease_s: float = 900.0
    quota_pending_ttl_s: float = 600.0
    inflight_checkpoint_s: float = 1.0
    instance_heartbeat_s: float = 5.0
    instance_dead_after_s: float = 30.0
    retries: int = 1
    retry_backoff_ms: int = 200
    retry_backoff_max_ms: int = 2000
    retry_after_max_s: float = 0.0
    max_attempts: int = 6
    request_timeout_s: float = 900.0
    circuit_window_s: float = 30.0
    circuit_min_calls: int = 5
    circuit_failure_ratio: float = 0.5
    circuit_cooldown_s: float = 30.0
    files_dir: str = "./lowart-files"
    file_url_ttl_s: float = 86400.0
    job_lease_s: float = 30.0
    job_heartbeat_s: float = 10.0
    job_poll_s: float = 0.5
    job_concurrency: int = 4
    max_tool_rounds: int = 8
    tool_session_ttl_s: float = 900.0
    mcp_call_timeout_s: float = 30.0
    redis_timeout_ms: int = 100
    redis_failure_mode: str = "closed"
    upstream_allow_private: bool = True  # loopback and private upstreams (SSRF policy)
    idempotency_ttl_s: float = 86400.0  # how long an Idempotency-Key's answer is replayed
    idempotency_lease_s: float = 30.0  # a running key's lease, renewed every third of it
    idempotency_sweep_s: float = 600.0  # how often expired keys are deleted
    header_timeout_s: float = 10.0  # a request's headers must arrive within this
    body_timeout_s: float = 30.0  # a body, within this plus 1 s per KiB received
    workdir: Path = dataclasses.field(default_factory=Path.cwd)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite store."""
        return self.database_url.startswith("sqlite")

    @property
    def files_root(self) -> Path:
        """Where stored files go (relative paths are under the working directory)."""
        return self.workdir / self.files_dir

    @property
    def outbox_dir(self) -> Path:
        """Where usage the database refused waits to be written."""
        return self.workdir / "lowart-outbox"

    @property
    def metrics_dir(self) -> Path | None:
        """Where the workers' metric files go, with ``WORKERS`` above 1 (None otherwise)."""
        return self.workdir / "lowart-metrics" if self.workers > 1 else None

    @property
    def key_file(self) -> Path:
        """Where a generated master key lives (SQLite only)."""
        return self.workdir / "lowart.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting from environment variables."""
        env = os.environ if env is None else env
        mode = env.get("LISTEN_MODE", "TCP").strip().upper() or "TCP"
        if mode not in {"TCP", "UDS"}:
            raise StartupError(f"LISTEN_MODE must be TCP or UDS, got {mode!r}")
        admin_key = _secret(env, "ADMIN_KEY", _MIN_ADMIN_KEY)
        master_key = _secret(env, "MASTER_KEY", MIN_MASTER_KEY)
        database_url = env.get("DATABASE_URL", "").strip() or "sqlite:///lowart.db"
        settings = cls(
            host=env.get("HOST", "").strip() or "127.0.0.1",
            port=_int(env, "PORT", 8080),
            listen_mode=mode,
            uds_path=env.get("UDS_PATH", "").strip() or "./lowart.sock",
            uds_mode=_octal(env, "UDS_MODE", 0o660),
            database_url=database_url,
            sqlite_busy_timeout_ms=_int(env, "SQLITE_BUSY_TIMEOUT_MS", 5000),
            redis_url=_optional(env, "REDIS_URL"),
            master_key=master_key,
            admin_key=admin_key,
            workers=_int(env, "WORKERS", 1),
            public_base_url=_optional(env, "PUBLIC_BASE_URL"),
            metrics_token=_optional(env, "METRICS_TOKEN"),
            log_level=(env.get("LOG_LEVEL", "").strip() or "info").lower(),
            log_format=(env.get("LOG_FORMAT", "").strip() or "console").lower(),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 32 * 1024 * 1024),
            count_tokens_max_body_bytes=_int(env, "COUNT_TOKENS_MAX_BODY_BYTES", 2 * 1024 * 1024),
            max_in_flight=_int(env, "MAX_IN_FLIGHT", 0),
            stream_write_timeout_s=_float(env, "STREAM_WRITE_TIMEOUT_S", 60.0),
            upstream_pool_size=_int(env, "UPSTREAM_POOL_SIZE", 1024),
            upstream_max_body_bytes=_int(env, "UPSTREAM_MAX_BODY_BYTES", 32 * 1024 * 1024),
            shutdown_grace_s=_float(env, "SHUTDOWN_GRACE_S", 30.0),
            usage_flush_ms=_int(env, "USAGE_FLUSH_MS", 100),
            cache_refresh_s=_float(env, "CACHE_REFRESH_S", 2.0),
            rpm_window_s=_float(env, "RPM_WINDOW_S", 60.0),
            quota_default_reserve=_int(env, "QUOTA_DEFAULT_RESERVE", 1000),
            quota_lease_s=_float(env, "QUOTA_LEASE_S", 900.0),
            quota_pending_ttl_s=_float(env, "QUOTA_PENDING_TTL_S", 600.0),
            inflight_checkpoint_s=_float(env, "INFLIGHT_CHECKPOINT_S", 1.0),
            instance_heartbeat_s=_float(env, "INSTANCE_HEARTBEAT_S", 5.0),
            instance_dead_after_s=_float(env, "INSTANCE_DEAD_AFTER_S", 30.0),
            retries=_int(env, "RETRIES", 1),
            retry_backoff_ms=_int(env, "RETRY_BACKOFF_MS", 200),
            retry_backoff_max_ms=_int(env, "RETRY_BACKOFF_MAX_MS", 2000),
            retry_after_max_s=_float(env, "RETRY_AFTER_MAX_S", 0.0),
            max_attempts=_int(env, "MAX_ATTEMPTS", 6),
            request_timeout_s=_float(env, "REQUEST_TIMEOUT_S", 900.0),
            circuit_window_s=_float(env, "CIRCUIT_WINDOW_S", 30.0),
            circuit_min_calls=_int(env, "CIRCUIT_MIN_CALLS", 5),
            circuit_failure_ratio=_float(env, "CIRCUIT_FAILURE_RATIO", 0.5),
            circuit_cooldown_s=_float(env, "CIRCUIT_COOLDOWN_S", 30.0),
            files_dir=env.get("FILES_DIR", "").strip() or "./lowart-files",
            file_url_ttl_s=_float(env, "FILE_URL_TTL_S", 86400.0),
            job_lease_s=_float(env, "JOB_LEASE_S", 30.0),
            job_heartbeat_s=_float(env, "JOB_HEARTBEAT_S", 10.0),
            job_poll_s=_float(env, "JOB_POLL_S", 0.5),
            job_concurrency=_int(env, "JOB_CONCURRENCY", 4),
            max_tool_rounds=_int(env, "MAX_TOOL_ROUNDS", 8),
            tool_session_ttl_s=_float(env, "TOOL_SESSION_TTL_S", 900.0),
            mcp_call_timeout_s=_float(env, "MCP_CALL_TIMEOUT_S", 30.0),
            redis_timeout_ms=_int(env, "REDIS_TIMEOUT_MS", 100),
            redis_failure_mode=(env.get("REDIS_FAILURE_MODE", "").strip() or "closed").lower(),
            upstream_allow_private=_bool(env, "UPSTREAM_ALLOW_PRIVATE", True),
            idempotency_ttl_s=_float(env, "IDEMPOTENCY_TTL_S", 86400.0),
            idempotency_lease_s=_float(env, "IDEMPOTENCY_LEASE_S", 30.0),
            idempotency_sweep_s=_float(env, "IDEMPOTENCY_SWEEP_S", 600.0),
            header_timeout_s=_float(env, "HEADER_TIMEOUT_S", 10.0),
            body_timeout_s=_float(env, "BODY_TIMEOUT_S", 30.0),
            workdir=Path(env.get("LOWART_WORKDIR", "").strip() or Path.cwd()),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse combinations that cannot work."""
        self._validate_database()
        if self.retries < 0 or self.max_attempts < 1:
            raise StartupError("RETRIES must be 0 or more and MAX_ATTEMPTS at least 1")
        if not 0 < self.circuit_failure_ratio <= 1:
            raise StartupError("CIRCUIT_FAILURE_RATIO must be in (0, 1]")
        if self.job_heartbeat_s >= self.job_lease_s:
            raise StartupError("JOB_HEARTBEAT_S must be shorter than JOB_LEASE_S")
        if self.workers < 1:
            raise StartupError("WORKERS must be at least 1")
        self._validate_liveness()
        if self.workers > 1 and self.redis_url is None:
            raise StartupError("WORKERS > 1 needs REDIS_URL: limits and quotas must be shared")
        if self.redis_failure_mode not in {"closed", "degraded"}:
            raise StartupError("REDIS_FAILURE_MODE must be closed or degraded")
        if self.log_format not in {"console", "json"}:
            raise StartupError("LOG_FORMAT must be console or json")
        self._validate_positive()

    def _validate_positive(self) -> None:
        positive = {
            "COUNT_TOKENS_MAX_BODY_BYTES": self.count_tokens_max_body_bytes,
            "HEADER_TIMEOUT_S": self.header_timeout_s,
            "BODY_TIMEOUT_S": self.body_timeout_s,
            "UPSTREAM_MAX_BODY_BYTES": self.upstream_max_body_bytes,
            "IDEMPOTENCY_TTL_S": self.idempotency_ttl_s,
            "IDEMPOTENCY_LEASE_S": self.idempotency_lease_s,
            "IDEMPOTENCY_SWEEP_S": self.idempotency_sweep_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise StartupError(f"{name} must be positive")

    def _validate_liveness(self) -> None:
        if self.inflight_checkpoint_s <= 0 or self.instance_heartbeat_s <= 0:
            raise StartupError("INFLIGHT_CHECKPOINT_S and INSTANCE_HEARTBEAT_S must be positive")
        if self.instance_heartbeat_s >= self.instance_dead_after_s:
            raise StartupError("INSTANCE_HEARTBEAT_S must be shorter than INSTANCE_DEAD_AFTER_S")

    def _validate_database(self) -> None:
        if not (self.is_sqlite or self.database_url.startswith(("postgresql", "postgres"))):
            raise StartupError("DATABASE_URL must be sqlite:///… or postgresql://…")
        if not self.is_sqlite and self.master_key is None:
            raise StartupError("MASTER_KEY must be set when DATABASE_URL is PostgreSQL")
        if self.sqlite_busy_timeout_ms < 0:
            raise StartupError("SQLITE_BUSY_TIMEOUT_MS must be 0 or more")
