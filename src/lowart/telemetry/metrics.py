"""The gateway's Prometheus series, on one registry object (no globals)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
)
RATE_LIMIT_REASONS = ("rpm", "quota", "upstream", "overload")


class Metrics:
    """Every series api.md lists. Model labels take only configured ids, else ``other``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self._known_models: frozenset[str] = frozenset()
        self.tokens = Counter("gateway_tokens", "Tokens billed.", ["model", "type"], registry=r)
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "gateway_requests", "Model requests by outcome.", ["model", "status"], registry=r
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Upstream call duration.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time to the first streamed byte.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks", "Fallbacks taken.", ["from_model", "to_model"], registry=r
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused by a limit.", ["reason"], registry=r
        )
        self.retries = Counter(
            "gateway_retries", "Retries of the same model.", ["model"], registry=r
        )
        self.jobs = Gauge("gateway_jobs", "Jobs by status.", ["status"], registry=r)
        for reason in RATE_LIMIT_REASONS:
            self.rate_limited.labels(reason=reason)

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, cached: label sets are bounded, and the hot path pays
        for the lookup on every request otherwise."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def set_models(self, model_ids: Iterable[str]) -> None:
        """The configured model ids, the only values a model label may take."""
        self._known_models = frozenset(model_ids)

    def model_label(self, model_id: str) -> str:
        """A bounded label value for a model id."""
        return model_id if model_id in self._known_models else OTHER

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
