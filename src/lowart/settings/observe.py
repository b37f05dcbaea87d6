"""The settings of observing requests: OpenTelemetry traces and the opt-in request logs.

Traces read the standard ``OTEL_*`` variables (docs/operations.md, "Tracing"); they are off
until a collector's endpoint is set. Request logs are off unless ``REQUEST_LOG`` is true or a
model sets ``params.request_log`` (docs/operations.md, "Request logs").
"""

from __future__ import annotations

from dataclasses import dataclass

from lowart.settings.declare import boolean, integer, number, setting, text

MIB = 1024 * 1024
# E-mail addresses, bearer tokens and key-shaped strings (OpenAI, Anthropic, Lowart and the like).
DEFAULT_REDACT_PATTERNS = (
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|lw|pk|rk|ak|key)-[A-Za-z0-9_-]{12,}"
)


@dataclass(frozen=True)
class TracingSettings:
    """Traces, sent to an OpenTelemetry collector over OTLP/HTTP (docs/operations.md, "Tracing")."""

    endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        None,
        text,
        "the OTLP/HTTP collector's base URL; spans go to `<endpoint>/v1/traces`. Unset (and "
        "`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` unset): tracing is off and costs nothing",
    )
    traces_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        None,
        text,
        "the full URL spans are posted to (wins over `OTEL_EXPORTER_OTLP_ENDPOINT`)",
    )
    headers: str = setting(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "",
        text,
        "`name=value` pairs, comma separated, sent with each export (a collector's token); "
        "never logged",
        shown="none",
    )
    service_name: str = setting(
        "OTEL_SERVICE_NAME", "lowart", text, "the `service.name` resource attribute"
    )
    disabled: bool = setting(
        "OTEL_SDK_DISABLED", False, boolean, "`true` turns tracing off even with an endpoint"
    )
    sample_ratio: float = setting(
        "OTEL_TRACES_SAMPLER_ARG",
        1.0,
        number,
        "the share of new traces kept (parent-based: a caller's sampled `traceparent` is followed)",
    )
    schedule_delay_ms: int = setting(
        "OTEL_BSP_SCHEDULE_DELAY", 5000, integer, "milliseconds between two exports"
    )
    max_queue_size: int = setting(
        "OTEL_BSP_MAX_QUEUE_SIZE",
        2048,
        integer,
        "spans held for export; when full, new spans are dropped (a request never waits)",
    )
    max_export_batch_size: int = setting(
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, integer, "the most spans in one export"
    )
    export_timeout_ms: int = setting(
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        10000,
        integer,
        "milliseconds one export may take, retries included; then it counts as failed",
    )
    shutdown_flush_s: float = setting(
        "TRACE_SHUTDOWN_FLUSH_S",
        5.0,
        number,
        "at shutdown, how long the spans still queued may take to export; the rest is dropped",
    )


@dataclass(frozen=True)
class RequestLogSettings:
    """Request logs: the bodies of requests and answers (docs/operations.md, "Request logs")."""

    enabled: bool = setting(
        "REQUEST_LOG",
        False,
        boolean,
        "log the bodies of every model's requests; `false`: only models with "
        "`params.request_log: true`",
    )
    redact_paths: str = setting(
        "REQUEST_LOG_REDACT_PATHS",
        "",
        text,
        "JSON paths whose values are replaced by `***`, comma separated: dotted keys, `*` for "
        "any key or list item (e.g. `metadata.customer,messages.*.name`)",
        shown="none",
    )
    redact_patterns: str = setting(
        "REQUEST_LOG_REDACT_PATTERNS",
        DEFAULT_REDACT_PATTERNS,
        text,
        "one regular expression (alternatives joined by `|`); every match in a logged string "
        "becomes `***`",
        shown="e-mail addresses, bearer tokens, key-shaped strings (`sk-…`, `lw-…`)",
    )
    max_body_bytes: int = setting(
        "REQUEST_LOG_MAX_BODY_BYTES",
        64 * 1024,
        integer,
        "the most bytes kept of each logged body; a longer one is cut and marked",
    )
    flush_ms: int = setting(
        "REQUEST_LOG_FLUSH_MS", 500, integer, "how often queued request logs are written"
    )
    max_queued_bytes: int = setting(
        "REQUEST_LOG_MAX_QUEUED_BYTES",
        64 * MIB,
        integer,
        "bytes of bodies held for request logs not yet written; a request that would pass it "
        "is not logged, and `gateway_request_logs_dropped_total` counts it",
    )
