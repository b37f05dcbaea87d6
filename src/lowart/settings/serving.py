"""The settings of serving: listening, the HTTP edge, logs, secrets, the stores, files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lowart.settings.declare import (
    computed_setting,
    integer,
    lower,
    networks,
    number,
    octal,
    path,
    secret,
    setting,
    text,
    upper_choice,
)

MIN_ADMIN_KEY = 20
MIN_MASTER_KEY = 32
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the gateway listens, and how it stops."""

    host: str = setting("HOST", "127.0.0.1", text, "TCP listen address")
    port: int = setting("PORT", 8080, integer, "TCP listen port (`0` picks a free port)")
    listen_mode: str = setting("LISTEN_MODE", "TCP", upper_choice("TCP", "UDS"), "`TCP` or `UDS`")
    uds_path: str = setting("UDS_PATH", "./lowart.sock", text, "the Unix socket in UDS mode")
    uds_mode: int = setting(
        "UDS_MODE", 0o660, octal, "the Unix socket's mode (docs/deployment.md)", shown="`0660`"
    )
    workers: int = setting(
        "WORKERS",
        1,
        integer,
        "worker processes behind one socket on this machine; more than 1 needs `REDIS_URL` "
        '(docs/deployment.md, "Several workers")',
    )
    shutdown_grace_s: float = setting(
        "SHUTDOWN_GRACE_S",
        30.0,
        number,
        "how long SIGTERM waits for in-flight requests and streams",
    )
    header_timeout_s: float = setting(
        "HEADER_TIMEOUT_S",
        10.0,
        number,
        "a request's headers must arrive within this; else `408` and the connection is closed "
        "(slowloris)",
    )
    body_timeout_s: float = setting(
        "BODY_TIMEOUT_S",
        30.0,
        number,
        "a request's body must arrive within this plus 1 s per KiB received; else `408` and the "
        "connection is closed (slow POST)",
    )
    workdir: Path = computed_setting(
        "LOWART_WORKDIR",
        Path.cwd,
        path,
        "where `lowart.key`, the stored files, the usage outbox and the workers' metrics go "
        "(relative paths are under it)",
        shown="the current directory",
    )


@dataclass(frozen=True)
class EdgeSettings:
    """What one HTTP request may carry, and how many run at once."""

    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", 32 * MIB, integer, "larger request bodies get 413"
    )
    count_tokens_max_body_bytes: int = setting(
        "COUNT_TOKENS_MAX_BODY_BYTES",
        2 * MIB,
        integer,
        "larger `/v1/messages/count_tokens` bodies get 413 (counting is free, so its bodies are "
        "kept small)",
    )
    embeddings_max_body_bytes: int = setting(
        "EMBEDDINGS_MAX_BODY_BYTES",
        16 * MIB,
        integer,
        "larger `/v1/embeddings` bodies get 413 (`MAX_BODY_BYTES` applies too, if smaller): "
        "2,048 inputs of 8 KiB of text each fit",
    )
    max_in_flight: int = setting(
        "MAX_IN_FLIGHT",
        0,
        integer,
        "model requests (POSTs under `/v1/`) running at once per process; beyond it, 503 "
        "`overloaded` with `Retry-After: 1`, at once",
        shown="`0` (no cap)",
    )
    stream_write_timeout_s: float = setting(
        "STREAM_WRITE_TIMEOUT_S",
        60.0,
        number,
        "a client that leaves a stream chunk unsent this long is cut (the upstream is closed, "
        "what was generated is billed)",
    )


@dataclass(frozen=True)
class LogSettings:
    """What is logged, and how."""

    level: str = setting("LOG_LEVEL", "info", lower, "the lowest level logged")
    format: str = setting(
        "LOG_FORMAT", "console", lower, "`console`, or `json` for structured logs"
    )


@dataclass(frozen=True)
class SecuritySettings:
    """The secrets the gateway is started with."""

    master_key: str | None = setting(
        "MASTER_KEY",
        None,
        secret(MIN_MASTER_KEY),
        f"{MIN_MASTER_KEY}+ characters; encrypts vendor keys. Required with PostgreSQL. Set but "
        "empty refuses to start",
        shown="generated into `lowart.key` (SQLite only)",
        blank_is_default=False,
    )
    admin_key: str | None = setting(
        "ADMIN_KEY",
        None,
        secret(MIN_ADMIN_KEY),
        f"{MIN_ADMIN_KEY}+ characters; the bootstrap admin's key. Set but empty refuses to start",
        blank_is_default=False,
    )
    metrics_token: str | None = setting(
        "METRICS_TOKEN",
        None,
        text,
        "when set, `/metrics` needs `Authorization: Bearer <token>`",
    )
    trusted_proxies: tuple[str, ...] = setting(
        "TRUSTED_PROXIES",
        (),
        networks,
        "comma-separated CIDRs of the reverse proxies in front of the gateway: when the peer is "
        "one of them, the admin audit log takes the client's address from `X-Forwarded-For` "
        "(the first address from the right that is not a trusted proxy; docs/operations.md, "
        '"Admin audit log")',
        shown="none",
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """The database, and how often the gateway reloads what it caches from it."""

    url: str = setting(
        "DATABASE_URL",
        "sqlite:///lowart.db",
        text,
        "SQLite file, or `postgresql://user@host/db`",
    )
    sqlite_busy_timeout_ms: int = setting(
        "SQLITE_BUSY_TIMEOUT_MS",
        5000,
        integer,
        "how long a SQLite write waits for a lock another process holds; past it the write "
        "fails with 503 and is not saved",
    )
    cache_refresh_s: float = setting(
        "CACHE_REFRESH_S",
        2.0,
        number,
        "how often users, keys and models are reloaded (hand edits show up within this)",
    )

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite store."""
        return self.url.startswith("sqlite")


@dataclass(frozen=True)
class RedisSettings:
    """Redis, shared by the instances of one gateway."""

    url: str | None = setting(
        "REDIS_URL",
        None,
        text,
        "shares RPM windows and quota reservations between instances and tells every instance "
        "of admin changes at once",
    )
    timeout_ms: int = setting(
        "REDIS_TIMEOUT_MS", 100, integer, "how long Redis has to answer one call"
    )
    failure_mode: str = setting(
        "REDIS_FAILURE_MODE",
        "closed",
        lower,
        "when Redis does not answer in time: refuse with 503 (`closed`), or fall back to a "
        "per-process window (`degraded`); never unlimited",
    )


@dataclass(frozen=True)
class FileSettings:
    """Generated files and the signed URLs that serve them."""

    dir: str = setting("FILES_DIR", "./lowart-files", text, "where generated images are stored")
    url_ttl_s: float = setting(
        "FILE_URL_TTL_S", 86400.0, number, "how long a signed file URL stays valid"
    )
    public_base_url: str | None = setting(
        "PUBLIC_BASE_URL",
        None,
        text,
        "makes the file URLs the gateway hands out absolute",
    )
