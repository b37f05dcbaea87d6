"""How the tracing settings turn into an exporter (docs/operations.md, "Tracing")."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lowart.errors import StartupError
from lowart.settings import Settings
from lowart.telemetry.trace_export import CountingExporter, build_tracing, otlp_headers, traces_url


def test_tracing_is_off_unless_an_endpoint_is_set() -> None:
    settings = Settings()
    assert traces_url(settings.tracing) is None
    assert build_tracing(settings.tracing, lambda: None) is None
    on = settings.replace(otel_exporter_otlp_endpoint="http://c:4318/").tracing
    assert traces_url(on) == "http://c:4318/v1/traces"
    exact = settings.replace(
        otel_exporter_otlp_endpoint="http://c:4318", otel_exporter_otlp_traces_endpoint="http://t/x"
    )
    assert traces_url(exact.tracing) == "http://t/x"
    disabled = settings.replace(otel_exporter_otlp_endpoint="http://c", otel_sdk_disabled=True)
    assert traces_url(disabled.tracing) is None


def test_export_headers_are_name_value_pairs() -> None:
    assert otlp_headers("") == {}
    assert otlp_headers("x-token = abc==, b=1") == {"x-token": "abc==", "b": "1"}
    with pytest.raises(StartupError, match="OTEL_EXPORTER_OTLP_HEADERS"):
        otlp_headers("novalue")


class _Failing(SpanExporter):
    def __init__(self, outcome: SpanExportResult | None) -> None:
        self.outcome = outcome

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.outcome is None:
            raise ConnectionError("collector gone")
        return self.outcome


def test_every_failed_export_is_counted_and_none_raises() -> None:
    counted: list[int] = []
    for outcome, failures in [
        (SpanExportResult.SUCCESS, 0),
        (SpanExportResult.FAILURE, 1),
        (None, 1),
    ]:
        exporter = CountingExporter(_Failing(outcome), lambda: counted.append(1))
        expected = SpanExportResult.SUCCESS if failures == 0 else SpanExportResult.FAILURE
        assert exporter.export([]) is expected
        assert exporter.failures == failures
    assert len(counted) == 2
