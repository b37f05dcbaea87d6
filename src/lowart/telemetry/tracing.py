"""The tracer the request path uses when tracing is on (docs/operations.md, "Tracing").

Each traced place holds a ``Tracing | None``: None when tracing is off, so that the hot path
pays one ``is None`` check and builds no span object. Span attributes follow the OpenTelemetry
GenAI semantic conventions at ``SEMCONV_VERSION``; what they lack is under ``lowart.*``.
Context travels in the W3C ``traceparent`` / ``tracestate`` headers: a caller's is continued,
and each upstream attempt sends its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lowart.errors import LowartError

SEMCONV_VERSION = "1.37.0"  # the GenAI conventions with gen_ai.provider.name
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
# Vendor keys (providers/registry.py) as the conventions' provider names.
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "azure": "azure.ai.openai"}
_PROPAGATOR = TraceContextTextMapPropagator()

__all__ = ["CLIENT", "INTERNAL", "SERVER", "Span", "Tracing"]
SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL


class Tracing:
    """Starts spans on the process's tracer provider, and flushes them at shutdown."""

    def __init__(
        self,
        provider: TracerProvider,
        shutdown_s: float,
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        self._provider = provider
        self._on_shutdown = on_shutdown
        self._tracer = provider.get_tracer("lowart", schema_url=_schema(SEMCONV_VERSION))
        self._shutdown_s = shutdown_s

    def start(
        self,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
        parent: Context | None = None,
    ) -> Span:
        """A span, child of ``parent`` (else of the current span); the caller ends it."""
        return self._tracer.start_span(name, parent, kind, attributes=attributes)

    @contextmanager
    def current(self, span: Span) -> Iterator[Span]:
        """``span`` is the current span inside the block (its children and upstream headers
        follow it); ending it stays the caller's."""
        token = otel_context.attach(set_span_in_context(span))
        try:
            yield span
        finally:
            otel_context.detach(token)

    @contextmanager
    def span(
        self,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
        not_failures: tuple[type[BaseException], ...] = (),
    ) -> Iterator[Span]:
        """A span current inside the block, ended at its end; an exception (other than
        ``not_failures``) marks it failed with ``error.type``."""
        span = self.start(name, kind, attributes)
        with self.current(span):
            try:
                yield span
            except not_failures:
                raise
            except LowartError as exc:
                failed(span, exc.error_code or type(exc).__name__, exc.message)
                raise
            except BaseException as exc:
                failed(span, type(exc).__name__)
                raise
            finally:
                span.end()

    @staticmethod
    def continued(headers: Mapping[str, str]) -> Context:
        """The context a caller's ``traceparent`` (and ``tracestate``) carries, if any."""
        return _PROPAGATOR.extract(headers)

    @staticmethod
    def inject(headers: dict[str, str]) -> None:
        """Add the current span's ``traceparent`` (and ``tracestate``) to ``headers``."""
        _PROPAGATOR.inject(headers)

    async def shutdown(self) -> None:
        """Export what is queued, within ``TRACE_SHUTDOWN_FLUSH_S``; the rest is dropped. The
        flush runs on a daemon thread: a collector that never answers cannot hold the exit."""
        self._on_shutdown()
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def flush() -> None:
            self._provider.force_flush(int(self._shutdown_s * 1000))
            self._provider.shutdown()  # stops the exporter's retries
            with contextlib.suppress(RuntimeError):  # the loop may be gone by now
                loop.call_soon_threadsafe(_settle, done)

        threading.Thread(target=flush, name="trace-flush", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, self._shutdown_s)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def annotate_current(attributes: Mapping[str, Any], name: str | None = None) -> None:
    """Add ``attributes`` to the current span (and rename it): for what is learnt inside it."""
    span = get_current_span()
    if name is not None:
        span.update_name(name)
    span.set_attributes(attributes)


def failed(span: Span, error_type: str, message: str = "") -> None:
    """Mark ``span`` as failed with ``error.type``."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message or None))


def server_of(base_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of an upstream's base URL."""
    parts = urlsplit(base_url)
    found: dict[str, Any] = {SERVER_ADDRESS: parts.hostname or ""}
    if parts.port is not None:
        found[SERVER_PORT] = parts.port
    return found


def _schema(version: str) -> str:
    return f"https://opentelemetry.io/schemas/{version}"
