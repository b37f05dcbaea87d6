"""The job runner: claims jobs with a lease, heartbeats while they run, and resumes after a crash.

A job's state lives in its row. The runner claims pending jobs, and running jobs whose lease
expired (their process died), up to a concurrency limit; it renews the leases of the jobs it runs;
on a clean shutdown it gives the leases back so the next start resumes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from lowart.errors import LowartError
from lowart.storage.jobs import JobRepository, JobRow
from lowart.telemetry.metrics import Metrics
from lowart.telemetry.tracing import INTERNAL, REQUEST_MODEL, Tracing

log = structlog.get_logger()

JOB_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "require_confirmation")
KEY_REVOKED = "The API key that submitted the job was revoked."


@dataclass(frozen=True, slots=True)
class JobConfig:
    """How jobs are claimed and kept."""

    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    poll_s: float = 0.5
    concurrency: int = 4


class JobContext:
    """What an executor may do to its own job while it runs."""

    def __init__(
        self, job: JobRow, repo: JobRepository, owner: str, clock: Callable[[], float]
    ) -> None:
        self.job = job
        self._repo = repo
        self._owner = owner
        self._clock = clock
        self._progress = job.progress
        self.upstream_ref = job.upstream_ref
        self.cancelled_by_user = False

    async def progress(self, value: float) -> None:
        """Report progress in [0, 1]; it only ever rises."""
        value = min(max(value, 0.0), 1.0)
        if value > self._progress:
            self._progress = value
            await self._repo.update(self.job.job_id, self._owner, self._clock(), progress=value)

    async def set_upstream_ref(self, ref: str) -> None:
        """Remember the upstream's handle (a ComfyUI prompt id) before waiting on it."""
        self.upstream_ref = ref
        await self._repo.update(self.job.job_id, self._owner, self._clock(), upstream_ref=ref)


Executor = Callable[[JobRow, JobContext], Awaitable[dict[str, Any]]]


class AwaitingConfirmation(Exception):
    """The job paused on a tool confirmation; ``POST /v1/tools/confirm`` resumes it."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class JobCancelled(Exception):
    """The job may not run any more (its key was revoked): it ends ``cancelled``, with why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobRunner:
    """Runs claimed jobs as tasks of this process."""

    def __init__(
        self,
        *,
        repo: JobRepository,
        executors: Mapping[str, Executor],
        config: JobConfig,
        owner: str,
        metrics: Metrics,
        on_beat: Callable[[], Awaitable[object]] | None = None,
        settle_usage: Callable[[], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self._repo = repo
        self._tracing = tracing
        self._settle_usage = settle_usage  # written before a result, so a crash cannot lose it
        self._executors = executors
        self._config = config
        self._owner = owner
        self._metrics = metrics
        self._clock = clock
        self._on_beat = on_beat
        self._active: dict[str, tuple[asyncio.Task[None], JobContext]] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """A job was submitted: look for work now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and heartbeat until ``stop``."""
        next_beat = 0.0
        while not self._stopping:
            try:
                await self._claim()
                if self._clock() >= next_beat:
                    next_beat = self._clock() + self._config.heartbeat_s
                    await self._beat()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("job_runner_cycle_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.poll_s)

    async def _claim(self) -> None:
        free = self._config.concurrency - len(self._active)
        if free <= 0:
            return
        for job in await self._repo.claim(self._owner, free, self._clock(), self._config.lease_s):
            context = JobContext(job, self._repo, self._owner, self._clock)
            task = asyncio.get_running_loop().create_task(self._execute(job, context))
            self._active[job.job_id] = (task, context)
            task.add_done_callback(functools.partial(self._forget, job.job_id))

    def _forget(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._active.pop(job_id, None)

    async def _beat(self) -> None:
        until = self._clock() + self._config.lease_s
        running = list(self._active)
        held = await self._repo.heartbeat(self._owner, running, until)
        for job_id in running:
            if job_id not in held:  # ended elsewhere (cancelled through another process)
                self.cancel(job_id)
        if self._on_beat is not None:
            await self._on_beat()
        counts = dict.fromkeys((*JOB_STATUSES, "other"), 0)  # a status with no rows shows 0
        for status, count in (await self._repo.count_by_status()).items():
            counts[status if status in JOB_STATUSES else "other"] += count
        for status, count in counts.items():
            self._metrics.jobs.labels(status=status).set(count)

    async def _execute(self, job: JobRow, context: JobContext) -> None:
        executor = self._executors.get(job.kind)
        try:
            if executor is None:
                raise LowartError(f"No executor for jobs of kind '{job.kind}'.")
            result = await self._run(executor, job, context)
        except AwaitingConfirmation as paused:
            await self._repo.pause(job.job_id, self._owner, self._clock(), paused.session_id)
        except JobCancelled as cancelled:
            await self._end(job, "cancelled", error=cancelled.reason)
        except asyncio.CancelledError:
            if context.cancelled_by_user:
                return  # the row already says cancelled
            raise  # shutting down: the lease goes back and the next start resumes the job
        except LowartError as exc:
            await self._end(job, "failed", error=exc.message)
        except Exception:
            log.exception("job_failed", job_id=job.job_id, kind=job.kind)
            await self._end(job, "failed", error="The job failed with an internal error.")
        else:
            if self._settle_usage is not None:  # billed before completed: a rerun sees the bill
                await self._settle_usage()
            await self._end(job, "completed", result=result)

    async def _run(self, executor: Executor, job: JobRow, context: JobContext) -> dict[str, Any]:
        """The executor's run; with tracing on, inside a span of its own (its attempts and
        tool calls are its children)."""
        if self._tracing is None:
            return await executor(job, context)
        attributes = {
            "lowart.job_id": job.job_id,
            "lowart.job_kind": job.kind,
            "lowart.job_attempt": job.attempts,
            REQUEST_MODEL: job.model,
        }
        name = f"job {job.kind}"
        with self._tracing.span(name, INTERNAL, attributes, (AwaitingConfirmation,)):
            return await executor(job, context)

    async def _end(
        self,
        job: JobRow,
        status: str,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        await self._repo.finish(
            job.job_id, self._owner, self._clock(), status=status, error=error, result=result
        )

    def cancel(self, job_id: str) -> None:
        """The job's row says cancelled: stop the local task, if this process runs the job."""
        active = self._active.get(job_id)
        if active is not None:
            task, context = active
            context.cancelled_by_user = True
            task.cancel()

    async def stop(self) -> None:
        """Stop claiming; interrupt running jobs and hand their leases back for a resume."""
        self._stopping = True
        self._wake.set()
        running = dict(self._active)
        for task, _ in running.values():
            task.cancel()
        await asyncio.gather(*(task for task, _ in running.values()), return_exceptions=True)
        await self._repo.release(self._owner, list(running), self._clock())
