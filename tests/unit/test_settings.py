"""Settings are read from an explicit environment mapping and refuse what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowart.errors import StartupError
from lowart.settings import Settings

GOOD_ADMIN_KEY = "a" * 20
GOOD_MASTER_KEY = "m" * 32


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.listen_mode == "TCP"
    assert settings.server.uds_path == "./lowart.sock"
    assert settings.server.uds_mode == 0o660
    assert settings.database.url == "sqlite:///lowart.db"
    assert settings.database.is_sqlite
    assert settings.usage.flush_ms == 100
    assert settings.server.workers == 1
    assert settings.redis.url is None
    assert settings.security.master_key is None
    assert settings.security.admin_key is None
    assert settings.security.metrics_token is None
    assert settings.files.public_base_url is None
    assert settings.log.level == "info"
    assert settings.log.format == "console"
    assert settings.edge.max_body_bytes == 32 * 1024 * 1024
    assert settings.server.shutdown_grace_s == 30.0
    assert settings.limits.rpm_window_s == 60.0
    assert settings.limits.quota_default_reserve == 1000
    assert settings.database.sqlite_busy_timeout_ms == 5000
    assert settings.transforms.workers == 2
    assert settings.transforms.timeout_ms == 50
    assert settings.transforms.memory_mb == 512
    assert settings.transforms.kill_after_ms == 1000
    assert settings.transforms.start_timeout_s == 10.0
    assert settings.money.currency == "USD"
    assert settings.money.budget_tz == "UTC"
    assert settings.security.trusted_proxies == ()
    assert settings.retention.usage_s == 0  # forever
    assert settings.retention.files_s == 7 * 86400
    assert settings.retention.request_logs_s == 30 * 86400


def test_retention_and_trusted_proxies_are_read() -> None:
    settings = Settings.from_env(
        {
            "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1",
            "USAGE_RETENTION_S": "31536000",
            "RETENTION_BATCH": "50",
        }
    )
    assert settings.security.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32", "::1/128")
    assert settings.retention.usage_s == 31536000
    assert settings.retention.batch == 50


def test_blank_values_mean_defaults() -> None:
    settings = Settings.from_env({"HOST": " ", "PORT": "", "LISTEN_MODE": "", "DATABASE_URL": "  "})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.listen_mode == "TCP"
    assert settings.database.url == "sqlite:///lowart.db"
    assert settings.security.admin_key is None


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "USAGE_FLUSH_MS": "20",
            "RPM_WINDOW_S": "1.5",
            "UDS_MODE": "0600",
            "WORKERS": "4",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "LOG_FORMAT": "JSON",
            "LOWART_WORKDIR": "/tmp/lowart-x",
            "SQLITE_BUSY_TIMEOUT_MS": "250",
            "CURRENCY": "eur",
            "BUDGET_TZ": "Europe/Paris",
        }
    )
    assert settings.money.currency == "EUR"
    assert settings.money.budget_tz == "Europe/Paris"
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9000
    assert settings.usage.flush_ms == 20
    assert settings.limits.rpm_window_s == 1.5
    assert settings.server.uds_mode == 0o600
    assert settings.server.workers == 4
    assert settings.log.format == "json"
    assert settings.key_file == Path("/tmp/lowart-x/lowart.key")
    assert settings.database.sqlite_busy_timeout_ms == 250


@pytest.mark.parametrize("raw", ["uds", "UDS", "Uds", " uds "])
def test_listen_mode_is_case_insensitive(raw: str) -> None:
    assert Settings.from_env({"LISTEN_MODE": raw}).server.listen_mode == "UDS"


@pytest.mark.parametrize("raw", ["tcp", "Tcp"])
def test_listen_mode_tcp(raw: str) -> None:
    assert Settings.from_env({"LISTEN_MODE": raw}).server.listen_mode == "TCP"


def test_admin_key_of_minimum_length_is_accepted() -> None:
    assert Settings.from_env({"ADMIN_KEY": GOOD_ADMIN_KEY}).security.admin_key == GOOD_ADMIN_KEY


def test_master_key_of_minimum_length_is_accepted() -> None:
    assert Settings.from_env({"MASTER_KEY": GOOD_MASTER_KEY}).security.master_key == GOOD_MASTER_KEY


def test_postgres_with_master_key() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://u@db/lowart", "MASTER_KEY": GOOD_MASTER_KEY}
    )
    assert not settings.database.is_sqlite


def test_workers_with_redis() -> None:
    settings = Settings.from_env({"WORKERS": "2", "REDIS_URL": "redis://127.0.0.1"})
    assert settings.server.workers == 2


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ADMIN_KEY": "a" * 19}, "ADMIN_KEY"),
        ({"MASTER_KEY": "m" * 31}, "MASTER_KEY"),
        ({"ADMIN_KEY": ""}, "ADMIN_KEY"),  # set but empty: refused, not taken as unset (S15)
        ({"ADMIN_KEY": "   "}, "ADMIN_KEY"),
        ({"MASTER_KEY": ""}, "MASTER_KEY"),
        ({"MASTER_KEY": " \t "}, "MASTER_KEY"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "80.5"}, "PORT"),
        ({"WORKERS": "two"}, "WORKERS"),
        ({"USAGE_FLUSH_MS": "100ms"}, "USAGE_FLUSH_MS"),
        ({"MAX_BODY_BYTES": "32M"}, "MAX_BODY_BYTES"),
        ({"UPSTREAM_MAX_BODY_BYTES": "32M"}, "UPSTREAM_MAX_BODY_BYTES"),
        ({"UPSTREAM_MAX_BODY_BYTES": "0"}, "UPSTREAM_MAX_BODY_BYTES"),
        ({"COUNT_TOKENS_MAX_BODY_BYTES": "0"}, "COUNT_TOKENS_MAX_BODY_BYTES"),
        ({"EMBEDDINGS_MAX_BODY_BYTES": "0"}, "EMBEDDINGS_MAX_BODY_BYTES"),
        ({"EMBEDDINGS_MAX_ANSWER_BYTES": "-1"}, "EMBEDDINGS_MAX_ANSWER_BYTES"),
        ({"QUOTA_DEFAULT_RESERVE": "x"}, "QUOTA_DEFAULT_RESERVE"),
        ({"SHUTDOWN_GRACE_S": "soon"}, "SHUTDOWN_GRACE_S"),
        ({"RPM_WINDOW_S": "1m"}, "RPM_WINDOW_S"),
        ({"WORKERS": "2"}, "WORKERS"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"DATABASE_URL": "postgresql://u@db/lowart"}, "MASTER_KEY"),
        ({"DATABASE_URL": "postgres://u@db/lowart"}, "MASTER_KEY"),
        ({"DATABASE_URL": "mysql://u@db/lowart"}, "DATABASE_URL"),
        ({"LISTEN_MODE": "unix"}, "LISTEN_MODE"),
        ({"LISTEN_MODE": "http"}, "LISTEN_MODE"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SQLITE_BUSY_TIMEOUT_MS": "5s"}, "SQLITE_BUSY_TIMEOUT_MS"),
        ({"SQLITE_BUSY_TIMEOUT_MS": "-1"}, "SQLITE_BUSY_TIMEOUT_MS"),
        ({"INFLIGHT_CHECKPOINT_S": "0"}, "INFLIGHT_CHECKPOINT_S"),
        ({"INSTANCE_HEARTBEAT_S": "30"}, "INSTANCE_HEARTBEAT_S must be shorter"),
        ({"INSTANCE_DEAD_AFTER_S": "soon"}, "INSTANCE_DEAD_AFTER_S"),
        ({"TRANSFORM_WORKERS": "0"}, "TRANSFORM_WORKERS"),
        ({"TRANSFORM_TIMEOUT_MS": "0"}, "TRANSFORM_TIMEOUT_MS"),
        ({"TRANSFORM_MEMORY_MB": "-1"}, "TRANSFORM_MEMORY_MB"),
        ({"TRANSFORM_KILL_AFTER_MS": "1s"}, "TRANSFORM_KILL_AFTER_MS"),
        ({"TRANSFORM_START_TIMEOUT_S": "0"}, "TRANSFORM_START_TIMEOUT_S"),
        ({"CURRENCY": "dollars"}, "CURRENCY"),
        ({"CURRENCY": "€"}, "CURRENCY"),
        ({"BUDGET_TZ": "Mars/Olympus"}, "BUDGET_TZ"),
        ({"BUDGET_TZ": "../etc/passwd"}, "BUDGET_TZ"),
        ({"BUDGET_WEBHOOK_URL": "https://hooks.example/b"}, "BUDGET_WEBHOOK_SECRET"),
        ({"BUDGET_WEBHOOK_URL": "ftp://hooks.example/b"}, "BUDGET_WEBHOOK_URL"),
        ({"BUDGET_WEBHOOK_SECRET": "short"}, "BUDGET_WEBHOOK_SECRET"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"),
        ({"RETENTION_BATCH": "0"}, "RETENTION_BATCH"),
        ({"RETENTION_SWEEP_S": "0"}, "RETENTION_SWEEP_S"),
        ({"FILE_RETENTION_S": "-1"}, "_RETENTION_S"),
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"TRACE_SHUTDOWN_FLUSH_S": "0"}, "TRACE_SHUTDOWN_FLUSH_S"),
        ({"REQUEST_LOG": "sometimes"}, "REQUEST_LOG"),
        ({"REQUEST_LOG_MAX_BODY_BYTES": "0"}, "REQUEST_LOG_MAX_BODY_BYTES"),
        ({"REQUEST_LOG_REDACT_PATTERNS": "(unclosed"}, "REQUEST_LOG_REDACT_PATTERNS"),
    ],
)
def test_invalid_settings_refuse_to_start(env: dict[str, str], variable: str) -> None:
    with pytest.raises(StartupError, match=variable):
        Settings.from_env(env)


@pytest.mark.parametrize("raw", ["rw-rw----", "0999"])
def test_bad_uds_mode_refuses_to_start(raw: str) -> None:
    with pytest.raises(StartupError, match="UDS_MODE"):
        Settings.from_env({"UDS_MODE": raw})


def test_from_env_does_not_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "not-a-number")
    assert Settings.from_env({}).server.port == 8080
