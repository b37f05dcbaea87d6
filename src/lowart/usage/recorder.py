"""The usage recorder: metrics at once, database rows in batches off the response path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping

import structlog

from lowart.storage.usage import UsageRepository
from lowart.telemetry.metrics import Metrics
from lowart.usage.events import UsageEvent

log = structlog.get_logger()

OnFlushed = Callable[[Mapping[str, int]], None]


class UsageRecorder:
    """Queues usage events and writes them every ``flush_ms``; nothing queued is dropped."""

    def __init__(
        self,
        repo: UsageRepository,
        metrics: Metrics,
        flush_ms: int,
        lock: asyncio.Lock,
        on_flushed: OnFlushed,
    ) -> None:
        self._repo = repo
        self._metrics = metrics
        self._interval = max(flush_ms, 1) / 1000
        self._lock = lock
        self._on_flushed = on_flushed
        self._queue: list[UsageEvent] = []
        self._keys_used: dict[str, dt.datetime] = {}
        self._stopping = asyncio.Event()
        self._failures = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(self, event: UsageEvent) -> None:
        """Count the event in the metrics now; queue its row."""
        model = self._metrics.model_label(event.requested_model)
        served = self._metrics.model_label(event.served_model)
        metrics = self._metrics
        metrics.child(metrics.requests, model, event.status).inc()
        if event.prompt_tokens:
            metrics.child(metrics.tokens, served, "prompt").inc(event.prompt_tokens)
        if event.completion_tokens:
            metrics.child(metrics.tokens, served, "completion").inc(event.completion_tokens)
        self._queue.append(event)

    def key_used(self, key_id: str) -> None:
        self._keys_used[key_id] = dt.datetime.now(dt.UTC)

    async def flush(self) -> int:
        """Write everything queued in one transaction. Returns the rows written."""
        async with self._lock:
            batch, self._queue = self._queue, []
            keys, self._keys_used = self._keys_used, {}
            if not batch and not keys:
                return 0
            deltas: defaultdict[str, int] = defaultdict(int)
            for event in batch:
                deltas[event.user_id] += event.total_tokens
            try:
                await self._repo.write_batch([e.row() for e in batch], deltas, keys)
            except BaseException:
                self._queue[:0] = batch  # put back, in order, for the next attempt
                self._keys_used = keys | self._keys_used
                raise
            self._on_flushed(deltas)
        return len(batch)

    async def run(self) -> None:
        """Flush every interval until ``stop``; a failing database keeps the rows queued."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            try:
                await self.flush()
                self._failures = 0
            except Exception:  # the loop must survive a database outage
                self._failures += 1
                if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
                    log.exception(
                        "usage_flush_failed", queued=len(self._queue), failures=self._failures
                    )

    async def stop(self) -> None:
        """Stop the loop and write what is left."""
        self._stopping.set()
        await self.flush()
