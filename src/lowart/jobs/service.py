"""Submitting, reading and cancelling jobs: what the API layer calls.

A job paused on a tool confirmation has a session; stopping the job must end that session too.
Sessions are not this package's: ``on_stop`` is told, wired by the pipeline
(``pipeline/job_tools.py``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lowart.errors import NotFound
from lowart.jobs.runner import KEY_REVOKED, JobRunner
from lowart.principal import Principal
from lowart.storage.jobs import JobRepository, JobRow

CHAT, IMAGES = "chat", "images"
# A stopped job's confirmation session (its id) must not run its calls any more; ``now``.
SessionStopped = Callable[[str, float], Awaitable[None]]


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


class JobService:
    """The owner-scoped view of jobs: another user's job is a 404, never a 403."""

    def __init__(
        self,
        repo: JobRepository,
        runner: JobRunner,
        on_stop: SessionStopped,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._runner = runner
        self._on_stop = on_stop
        self._clock = clock

    async def submit(
        self, principal: Principal, kind: str, model: str, request: dict[str, Any]
    ) -> JobRow:
        """Store the job and wake the runner; the caller answers 202 with its id."""
        job = await self._repo.create(
            job_id=new_job_id(),
            user_id=principal.user_id,
            key_id=principal.key_id,
            kind=kind,
            model=model,
            request=request,
            now=self._clock(),
        )
        self._runner.wake()
        return job

    async def get(self, principal: Principal, job_id: str) -> JobRow:
        job = await self._repo.get(job_id, principal.user_id)
        if job is None:
            raise NotFound(f"No job '{job_id}'.")
        return job

    async def list_jobs(self, principal: Principal, limit: int, after: str | None) -> list[JobRow]:
        return await self._repo.list_jobs(principal.user_id, limit, after)

    async def cancel(self, principal: Principal, job_id: str) -> JobRow:
        job = await self._repo.cancel(job_id, principal.user_id, self._clock())
        if job is None:
            raise NotFound(f"No job '{job_id}'.")
        await self._stop(job)
        return job

    async def key_revoked(self, key_id: str) -> None:
        """A revoked key's unfinished jobs end ``cancelled``: one this process runs stops now
        (billed for what its upstream had answered), one another process runs at its next
        heartbeat (docs/api.md, "Jobs")."""
        for job in await self._repo.cancel_for_key(key_id, self._clock(), KEY_REVOKED):
            await self._stop(job)

    async def _stop(self, job: JobRow) -> None:
        self._runner.cancel(job.job_id)
        if job.session_id is not None:  # its pending tool calls must not run any more
            await self._on_stop(job.session_id, self._clock())
