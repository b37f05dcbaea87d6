"""The gateway's Prometheus series, on one registry object (no globals).

The hot path counts into plain dictionaries (``add``, ``time``), folded into the Prometheus
objects when they are scraped: prometheus_client takes a lock and walks its buckets on every
update, which cost a request several microseconds. All updates happen on the event loop.

With several workers, prometheus_client's multiprocess mode keeps each worker's values in files
under one directory (``PROMETHEUS_MULTIPROC_DIR``, set by the parent before the workers import
prometheus_client), and a scrape merges them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

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
RATE_LIMIT_REASONS = ("rpm", "tpm", "quota", "budget", "upstream", "overload")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_TEAM_LABELS = 200  # team gauges are labelled by team id: bounded
# prometheus_client's multiprocess helpers are untyped: their signatures, stated once.
_merge_files: Callable[[CollectorRegistry, str], object] = MultiProcessCollector
_mark_dead: Callable[[int, str], None] = mark_process_dead


class TableSize(Protocol):
    """One table's measured size (``storage.table_stats.TableStats``)."""

    @property
    def table(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def bytes(self) -> int: ...


def reset_multiprocess_dir(path: Path) -> None:
    """Create the workers' metric directory, or empty it: files left by an earlier run would
    be counted again, and slow every scrape."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in path.iterdir():
        if not entry.is_dir() or entry.is_symlink():
            entry.unlink()


def forget_process(path: Path, pid: int) -> None:
    """A worker has exited: its live gauges stop counting (its counters stay in the totals)."""
    _mark_dead(pid, str(path))


class Metrics:
    """The series of docs/operations.md, "Metrics"; model labels: configured ids, else ``other``."""

    def __init__(
        self, registry: CollectorRegistry | None = None, multiprocess_dir: Path | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._multiprocess_dir = multiprocess_dir
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Pending updates, by metric and label values. A worker's files are read by every other
        # worker's scrape, so with several workers updates go straight to prometheus_client.
        self._deferred = multiprocess_dir is None
        self._counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
        self._timings: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}
        r = self.registry
        self._known_models: frozenset[str] = frozenset()
        # ``model``: the model the caller asked for; ``served_model``: the one that answered (a
        # fallback's). Both are configured ids or ``other``, so their pairs stay bounded.
        # ``deployment``: which of the served model's deployments (ids an admin defines,
        # docs/api.md "Deployments"; ``default`` for the model's own).
        self.tokens = Counter(
            "gateway_tokens", "Tokens billed.", ["model", "served_model", "type"], registry=r
        )
        self.cost = Counter(  # docs/api.md, "Prices and cost"
            "gateway_cost", "Cost billed, in units of CURRENCY.", ["model"], registry=r
        )
        self.team_budget = Gauge(
            "gateway_team_budget",
            "Each team's budget in its current period, in units of CURRENCY.",
            ["team"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.team_spent = Gauge(
            "gateway_team_budget_spent",
            "Each team's spend in its budget's current period, as of the last snapshot.",
            ["team"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "gateway_requests",
            "Model requests by outcome.",
            ["model", "served_model", "deployment", "status"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Upstream call duration.",
            ["model", "deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time to the first streamed byte.",
            ["model", "deployment"],
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
        # Incremented on the exporter's thread (prometheus_client counters take a lock).
        self.trace_export_failures = Counter(
            "gateway_trace_export_failures",
            'Span batches the OTLP collector did not take (docs/operations.md, "Tracing").',
            registry=r,
        )
        self.request_logs_dropped = Counter(
            "gateway_request_logs_dropped",
            "Request logs not written: their queue was full or the database refused them.",
            registry=r,
        )
        self.jobs = Gauge(
            "gateway_jobs",
            "Jobs by status.",
            ["status"],
            registry=r,
            multiprocess_mode="livemostrecent",  # every worker counts the same table
        )
        # Refreshed by the retention sweeper; one label value per table of the schema.
        self.table_rows = Gauge(
            "gateway_table_rows",
            "Rows per table.",
            ["table"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.table_bytes = Gauge(
            "gateway_table_bytes",
            'Bytes per table, indexes included (docs/operations.md, "Retention").',
            ["table"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
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

    def add(self, counter: Counter, *labels: str, amount: float = 1) -> None:
        """``counter.labels(*labels).inc(amount)``, folded in at the next scrape."""
        if not self._deferred:
            self.child(counter, *labels).inc(amount)
            return
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + amount

    def time(self, histogram: Histogram, seconds: float, *labels: str) -> None:
        """``histogram.labels(*labels).observe(seconds)``, folded in at the next scrape (every
        histogram here has the latency buckets)."""
        if not self._deferred:
            self.child(histogram, *labels).observe(seconds)
            return
        key = (histogram, labels)
        tally = self._timings.get(key)
        if tally is None:  # a count per bucket (+Inf last), then the sum
            tally = self._timings[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        tally[bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # buckets are "less or equal"
        tally[-1] += seconds

    def fold(self) -> None:
        """Apply the pending updates to the Prometheus objects."""
        counts, self._counts = self._counts, {}
        timings, self._timings = self._timings, {}
        for (counter, labels), amount in counts.items():
            self.child(counter, *labels).inc(amount)
        for (histogram, labels), tally in timings.items():
            child = self.child(histogram, *labels)
            # prometheus_client keeps a value per bucket (not cumulative) and the sum: adding to
            # them is what ``observe`` does, once per observation.
            for bucket, count in zip(child._buckets, tally[:-1], strict=True):
                if count:
                    bucket.inc(count)
            child._sum.inc(tally[-1])

    def set_tables(self, stats: Iterable[TableSize]) -> None:
        """Each table's rows and bytes, as last measured."""
        for table in stats:
            self.child(self.table_rows, table.table).set(table.rows)
            self.child(self.table_bytes, table.table).set(table.bytes)

    def set_models(self, model_ids: Iterable[str]) -> None:
        """The configured model ids, the only values a model label may take."""
        self._known_models = frozenset(model_ids)

    def set_team_budgets(self, standings: Iterable[tuple[str, int, int]]) -> None:
        """(team id, budget, spent) in micro-units, for at most ``MAX_TEAM_LABELS`` teams."""
        for team, budget, spent in list(standings)[:MAX_TEAM_LABELS]:
            self.team_budget.labels(team=team).set(budget / 1_000_000)
            self.team_spent.labels(team=team).set(spent / 1_000_000)

    def model_label(self, model_id: str) -> str:
        """A bounded label value for a model id."""
        return model_id if model_id in self._known_models else OTHER

    def render(self) -> bytes:
        """The Prometheus text exposition (of every worker's files, with several workers)."""
        self.fold()
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        _merge_files(merged, str(self._multiprocess_dir))
        return generate_latest(merged)
