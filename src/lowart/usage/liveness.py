"""Instance liveness: this process's heartbeat, and the recovery of dead instances' requests
in flight (docs/operations.md, "Requests in flight").

Every ``INSTANCE_HEARTBEAT_S`` the instance renews its heartbeat row, then turns the checkpoints
of every instance whose heartbeat is older than ``INSTANCE_DEAD_AFTER_S`` into ``partial``,
``estimated`` usage rows, settled into ``token_used`` once. A restarted instance does it for its
own previous run; scaled out, any live instance does it for one that died.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog

from lowart.storage.inflight import InstanceRepository
from lowart.usage.recorder import UsageRecorder

log = structlog.get_logger()

# Called (under the usage lock) with the tokens per user that a recovery wrote.
OnRecovered = Callable[[Mapping[str, int]], Awaitable[None]]


class Liveness:
    """Beats, then recovers, every ``heartbeat_s``; started with the usage writer."""

    def __init__(
        self,
        repo: InstanceRepository,
        recorder: UsageRecorder,
        *,
        heartbeat_s: float,
        dead_after_s: float,
        lock: asyncio.Lock,
        on_recovered: OnRecovered,
    ) -> None:
        self._repo = repo
        self._recorder = recorder
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self._lock = lock
        self._on_recovered = on_recovered
        self._started = time.time()
        self._drained = False  # this process's outbox was written first (it may hold a row
        # of a request whose checkpoint is still in the database)

    @property
    def instance_id(self) -> str:
        return self._recorder.inflight.instance_id

    async def beat(self) -> None:
        """Renew the heartbeat; the recorder checkpoints only once there is one."""
        await self._repo.beat(self.instance_id, self._started, time.time())
        self._recorder.checkpoints_on = True

    async def recover(self) -> int:
        """Bill the checkpoints of dead instances once. Returns the rows written."""
        if not self._drained:
            await self._recorder.flush()  # the outbox first
            self._drained = True
        async with self._lock:
            stale_before = time.time() - self._dead_after_s
            recovered = await self._repo.recover(self.instance_id, stale_before)
            if recovered.rows:
                await self._on_recovered(recovered.deltas)
        if recovered.rows:
            log.warning("inflight_recovered", rows=recovered.rows)
        return recovered.rows

    async def run(self) -> None:
        """Until cancelled; a failing database is retried at the next beat."""
        while True:
            try:
                await self.beat()
                await self.recover()
            except Exception:  # the loop must survive a database outage
                log.exception("instance_heartbeat_failed")
            await asyncio.sleep(self._heartbeat_s)
