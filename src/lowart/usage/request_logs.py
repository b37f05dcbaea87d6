"""Request logs (docs/operations.md, "Request logs"): which requests are logged, and the writer
that redacts and stores their bodies in batches, off the request path.

A logged request hands over references to what it already holds (the body as it came, the
answer as it was sent): no copy, no parsing and no I/O on its path. Every ``REQUEST_LOG_FLUSH_MS``
the writer redacts the queued entries on a worker thread (``formats/redaction.py``) and inserts
them in one transaction. The queue is bounded in bytes; an entry past the bound, or in a batch the
database refuses, is dropped and counted: a log is a diagnosis, never a reason to refuse work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from lowart.formats.redaction import Redaction, redacted_bytes, redacted_events
from lowart.storage.request_logs import RequestLogRepository
from lowart.telemetry.metrics import Metrics

log = structlog.get_logger()


@dataclass(slots=True)
class RequestLogEntry:
    """One logged request, as captured: its bodies unredacted until the writer's thread."""

    request_id: str
    user_id: str
    model: str
    stream: bool
    request: bytes
    created_at: float = field(default_factory=time.time)
    status: str = "ok"  # ok | error | cancelled
    http_status: int = 0
    answer: list[bytes] = field(default_factory=list)  # what was kept of what was sent
    answer_bytes: int = 0  # all that was sent

    @property
    def held(self) -> int:
        return len(self.request) + sum(map(len, self.answer))


def log_row(entry: RequestLogEntry, rules: Redaction) -> dict[str, Any]:
    """The row of an entry: both bodies redacted and capped (CPU work: on a worker thread)."""
    request, cut_request = redacted_bytes(entry.request, rules)
    answer = b"".join(entry.answer)
    if entry.stream and 200 <= entry.http_status < 300:
        response, cut_response = redacted_events(answer, rules, entry.answer_bytes)
    else:
        response, cut_response = redacted_bytes(answer, rules, entry.answer_bytes)
    return {
        "request_id": entry.request_id,
        "user_id": entry.user_id,
        "model": entry.model,
        "created_at": entry.created_at,
        "status": entry.status,
        "http_status": entry.http_status,
        "stream": int(entry.stream),
        "request_body": request,
        "response_body": response,
        "request_bytes": len(entry.request),
        "response_bytes": entry.answer_bytes,
        "truncated": int(cut_request or cut_response),
    }


class RequestLogs:
    """Decides which requests are logged, queues their entries and writes them in batches."""

    def __init__(
        self,
        repo: RequestLogRepository,
        rules: Redaction,
        metrics: Metrics,
        *,
        everything: bool,
        flush_ms: int,
        max_queued_bytes: int,
    ) -> None:
        self._repo = repo
        self.rules = rules
        self._metrics = metrics
        self.everything = everything  # REQUEST_LOG
        self.models: frozenset[str] = frozenset()  # params.request_log: true (set at refresh)
        self._interval = max(flush_ms, 1) / 1000
        self._max_held = max_queued_bytes
        self._held = 0
        self._queue: list[RequestLogEntry] = []
        self._queued = asyncio.Event()  # set by the first entry of a batch: no wake-ups idle
        self._stopping = asyncio.Event()
        self._writing = asyncio.Lock()  # a reader's flush waits for the batch being written

    @property
    def stream_keep(self) -> int:
        """How many bytes of a stream's events are kept: the cap, and room for redaction's
        context (a whole answer is kept whole: it is in memory anyway, and an embedding's
        vectors can be told from text only when its JSON is whole)."""
        return 2 * self.rules.max_bytes + 4096

    def record(self, entry: RequestLogEntry) -> None:
        """Queue an entry (dropped and counted past ``REQUEST_LOG_MAX_QUEUED_BYTES``)."""
        held = entry.held
        if self._held + held > self._max_held:
            self._metrics.add(self._metrics.request_logs_dropped)
            return
        self._held += held
        self._queue.append(entry)
        self._queued.set()

    async def flush(self) -> int:
        """Redact and write what is queued; returns the rows written."""
        async with self._writing:
            batch, self._queue, self._held = self._queue, [], 0
            self._queued.clear()
            if not batch:
                return 0
            rows = await asyncio.to_thread(lambda: [log_row(e, self.rules) for e in batch])
            try:
                await self._repo.insert(rows)
            except Exception:
                self._metrics.add(self._metrics.request_logs_dropped, amount=len(rows))
                raise
            return len(rows)

    async def run(self) -> None:
        """Once an entry is queued, wait an interval (for more to join its batch) and write
        them, until ``stop``; a failing database drops its batch."""
        while not self._stopping.is_set():
            await self._queued.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            try:
                await self.flush()
            except Exception:  # the loop must survive a database outage
                log.exception("request_log_flush_failed")

    async def stop(self) -> None:
        """Stop the loop and write what is left."""
        self._stopping.set()
        self._queued.set()  # wakes the loop, which then ends
        try:
            await self.flush()
        except Exception:
            log.exception("request_log_flush_at_stop_failed")
