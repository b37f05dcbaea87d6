"""The usage recorder: metrics at once, database rows in batches off the response path.

A batch the database refuses is spooled to the local outbox and written when the database is
back; until then the recorder reports itself unhealthy, and admission refuses new requests.

Every ``INFLIGHT_CHECKPOINT_S`` a flush also checkpoints the requests in flight longer than that
(``InFlightRegistry``); a request's checkpoint is deleted in the transaction that writes its
usage row, so a request is billed by its row or by its checkpoint, never by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from lowart.storage.usage import UsageRepository
from lowart.telemetry.metrics import Metrics
from lowart.usage.events import UsageEvent, billed_tokens, spend_of
from lowart.usage.inflight import InFlightRegistry
from lowart.usage.outbox import Outbox

log = structlog.get_logger()

# Called after a batch is in the database: tokens per user, quota settlement ids per user.
OnFlushed = Callable[[Mapping[str, int], Mapping[str, Sequence[str]]], Awaitable[None]]


class UsageRecorder:
    """Queues usage events and writes them every ``flush_ms``; nothing queued is dropped."""

    def __init__(
        self,
        repo: UsageRepository,
        metrics: Metrics,
        *,
        flush_ms: int,
        lock: asyncio.Lock,
        on_flushed: OnFlushed,
        on_spent: OnFlushed,
        outbox: Outbox,
        inflight: InFlightRegistry,
        checkpoint_s: float,
    ) -> None:
        self._repo = repo
        self.inflight = inflight
        self.checkpoints_on = False  # set once this instance's heartbeat is in the database
        self._checkpoint_s = checkpoint_s
        self._next_checkpoint = 0.0
        self._outbox = outbox
        self._metrics = metrics
        self._interval = max(flush_ms, 1) / 1000
        self._lock = lock
        self._on_flushed = on_flushed
        self._on_spent = on_spent
        self._queue: list[UsageEvent] = []
        self._keys_used: dict[str, float] = {}  # Unix time (a datetime costs more per request)
        self._stopping = asyncio.Event()
        self._failures = 0
        self.healthy = True  # the last write reached the database
        self._outbox_pending = True  # files may wait from an earlier run: look once

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(self, event: UsageEvent) -> None:
        """Count the event in the metrics now; queue its row."""
        model = self._metrics.model_label(event.requested_model)
        served = self._metrics.model_label(event.served_model)
        metrics = self._metrics
        metrics.add(metrics.requests, model, served, event.deployment, event.status)
        if event.billed_tokens:
            if event.prompt_tokens:
                metrics.add(metrics.tokens, model, served, "prompt", amount=event.prompt_tokens)
            if event.completion_tokens:
                metrics.add(
                    metrics.tokens, model, served, "completion", amount=event.completion_tokens
                )
        if event.cost:
            metrics.add(metrics.cost, served, amount=event.cost / 1_000_000)
        self._queue.append(event)
        self.inflight.finish(event.request_id)

    def key_used(self, key_id: str) -> None:
        self._keys_used[key_id] = time.time()

    async def flush(self) -> int:
        """Write the spooled batches, then everything queued, in one transaction each.

        Returns the rows written from the queue. A refused batch is spooled, then re-raised.
        """
        async with self._lock:
            await self._drain_outbox()
            batch, self._queue = self._queue, []
            keys, self._keys_used = self._keys_used, {}
            done, live = self.inflight.take_done(), self._due()
            if not batch and not keys and not done and not live:
                return 0
            rows = [e.row() for e in batch]
            deltas, tags = _totals(batch)
            spent, holds = spend_of(rows)
            try:
                used = {k: dt.datetime.fromtimestamp(t, dt.UTC) for k, t in keys.items()}
                await self._repo.write_batch(
                    rows, deltas, used, done=done, checkpoints=live, spent=spent
                )
            except Exception:
                self.healthy = False
                self._keys_used = keys | self._keys_used
                await self._spool(batch, rows, tags, done)
                raise
            except BaseException:
                self._queue[:0] = batch  # put back, in order, for the next attempt
                self.inflight.put_back_done(done)
                raise
            self.healthy = True
            await self._on_flushed(deltas, tags)
            await self._on_spent(spent, holds)
        return len(batch)

    def _due(self) -> list[dict[str, Any]]:
        """Checkpoint rows, once per ``INFLIGHT_CHECKPOINT_S`` (none before the heartbeat)."""
        now = time.time()
        if not self.checkpoints_on or now < self._next_checkpoint or not self.inflight:
            return []
        self._next_checkpoint = now + self._checkpoint_s
        return self.inflight.due(now, self._checkpoint_s)

    async def _spool(
        self,
        batch: list[UsageEvent],
        rows: list[dict[str, Any]],
        tags: dict[str, list[str]],
        done: list[str],
    ) -> None:
        if not rows:  # the ids of ended requests come with their rows: none without
            self.inflight.put_back_done(done)
            return
        try:
            await asyncio.to_thread(self._outbox.spool, rows, tags, done)
            self._outbox_pending = True
        except OSError:  # no disk either: keep the rows in memory for the next attempt
            log.exception("usage_spool_failed", rows=len(rows))
            self._queue[:0] = batch
            self.inflight.put_back_done(done)

    async def _drain_outbox(self) -> None:
        """Write each spooled batch once; stop at the first the database refuses."""
        if not self._outbox_pending:  # no directory scan on every flush
            return
        for spooled in await asyncio.to_thread(self._outbox.batches):
            deltas: defaultdict[str, int] = defaultdict(int)
            for row in spooled.rows:
                prompt, completion = row["prompt_tokens"], row["completion_tokens"]
                deltas[row["user_id"]] += billed_tokens(row["status"], prompt, completion)
            spent, holds = spend_of(spooled.rows)
            try:
                written = await self._repo.write_batch(
                    spooled.rows, deltas, {}, spooled.batch_id, done=spooled.done, spent=spent
                )
            except Exception:
                self.healthy = False
                raise
            await asyncio.to_thread(self._outbox.remove, spooled.batch_id)
            if written:
                await self._on_flushed(deltas, spooled.tags)
                await self._on_spent(spent, holds)
            log.info("usage_outbox_drained", rows=len(spooled.rows), written=written)
        self._outbox_pending = False

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
        """Stop the loop and write what is left (to the outbox, if the database refuses it)."""
        self._stopping.set()
        try:
            await self.flush()
        except Exception:  # spooled: written at the next start
            log.exception("usage_flush_at_stop_failed", outbox=True)


def _totals(batch: list[UsageEvent]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Tokens per user, and the quota settlements (with tokens) per user."""
    deltas: defaultdict[str, int] = defaultdict(int)
    tags: defaultdict[str, list[str]] = defaultdict(list)
    for event in batch:
        tokens = event.billed_tokens
        deltas[event.user_id] += tokens
        if tokens and event.reservation_id:
            tags[event.user_id].append(event.reservation_id)
    return deltas, tags
