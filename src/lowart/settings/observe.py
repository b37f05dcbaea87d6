"""The settings of observing requests: OpenTelemetry traces.

Traces read the standard ``OTEL_*`` variables (docs/operations.md, "Tracing"); they are off
until a collector's endpoint is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowart.settings.declare import boolean, integer, number, setting, text


@dataclass(frozen=True)
class TracingSettings:
    """OpenTelemetry traces over OTLP/HTTP (docs/operations.md, "Tracing")."""

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
