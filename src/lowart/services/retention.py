"""The retention task: every ``RETENTION_SWEEP_S`` it deletes the expired rows (and files'
bytes) in small batches, then refreshes the rows and bytes gauges of every table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.settings import Settings
from lowart.storage.filestore import FileStore
from lowart.storage.retention import RetentionSweeper, Sweep, expiries
from lowart.storage.table_stats import table_stats
from lowart.telemetry.metrics import Metrics

log = structlog.get_logger()


class Retention:
    """One process's sweeper and the table gauges it keeps current."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        files: FileStore,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        kept = settings.retention
        self.sweeper = RetentionSweeper(
            engine,
            expiries(settings, files.delete_blobs),
            batch=kept.batch,
            pause_s=kept.pause_s,
            clock=clock,
        )
        self._engine = engine
        self._metrics = metrics
        self._every_s = kept.sweep_s

    async def once(self) -> Sweep:
        """Sweep, then refresh the gauges."""
        swept = await self.sweeper.sweep()
        if any(swept.deleted.values()):
            log.info("retention_swept", deleted=swept.deleted, batches=swept.batches)
        self._metrics.set_tables(await table_stats(self._engine))
        return swept

    async def run(self) -> None:
        """A background task: a pass at start, then one every ``RETENTION_SWEEP_S``."""
        while True:
            try:
                await self.once()
            except Exception:  # the next pass deletes what this one left
                log.exception("retention_sweep_failed")
            await asyncio.sleep(self._every_s)
