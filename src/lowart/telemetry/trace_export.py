"""Building the tracer from the settings: the OTLP/HTTP exporter behind a bounded batch queue.

A dead collector must cost nothing but a counter: the exporter runs on the batch processor's
thread, never on a request's path; the queue is bounded (spans beyond it are dropped); and
``CountingExporter`` turns every failed export into ``gateway_trace_export_failures_total``
(docs/operations.md, "Tracing").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import structlog
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from lowart.errors import StartupError
from lowart.settings.observe import TracingSettings
from lowart.telemetry.tracing import Tracing

log = structlog.get_logger()
# The exporter logs each failed export with its traceback; the counter and our own sparse
# warning say the same without flooding the logs while a collector is down.
_QUIET = ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.sdk.trace.export")


class CountingExporter(SpanExporter):
    """An exporter that counts its failures (an exception is a failure, never raised on)."""

    def __init__(self, inner: SpanExporter, on_failure: Callable[[], None]) -> None:
        self._inner = inner
        self._on_failure = on_failure
        self.failures = 0
        self._quiet = False  # at shutdown: the logs may be closed before this thread ends

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:  # the exporter's thread must outlive a broken exporter (rare: a
            log.exception("trace_export_raised")  # dead collector is a FAILURE result)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
            self._on_failure()
            if not self._quiet and (self.failures in (1, 10, 100) or self.failures % 1000 == 0):
                log.warning("trace_export_failed", spans=len(spans), failures=self.failures)
        return result

    def quiet(self) -> None:
        """Log no more failures (the process is stopping); they are still counted."""
        self._quiet = True

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def traces_url(settings: TracingSettings) -> str | None:
    """Where spans are posted, or None when tracing is off."""
    if settings.disabled:
        return None
    if settings.traces_endpoint:
        return settings.traces_endpoint
    if settings.endpoint:
        return settings.endpoint.rstrip("/") + "/v1/traces"
    return None


def otlp_headers(raw: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``name=value`` pairs, comma separated."""
    headers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise StartupError("OTEL_EXPORTER_OTLP_HEADERS must be name=value pairs")
        headers[name.strip()] = value.strip()
    return headers


def build_tracing(settings: TracingSettings, on_failure: Callable[[], None]) -> Tracing | None:
    """The tracer, or None when no collector is configured (then no span is ever built)."""
    url = traces_url(settings)
    if url is None:
        return None
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    exporter = OTLPSpanExporter(
        endpoint=url,
        headers=otlp_headers(settings.headers),
        timeout=settings.export_timeout_ms / 1000,
    )
    ratio = min(max(settings.sample_ratio, 0.0), 1.0)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    counting = CountingExporter(exporter, on_failure)
    processor = BatchSpanProcessor(
        counting,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.schedule_delay_ms,
        max_export_batch_size=min(settings.max_export_batch_size, settings.max_queue_size),
        export_timeout_millis=settings.export_timeout_ms,
    )
    provider.add_span_processor(processor)
    return Tracing(provider, settings.shutdown_flush_s, on_shutdown=counting.quiet)
