"""Where jobs and gateway-run tools meet, so that neither package imports the other.

A job that runs the tool loop may pause on a confirmation session. Confirming the session settles
the job (``tools/sessions.WaitingJobs``, implemented by ``JobsOfSessions``); a session that
expires fails its job; stopping the job (cancelled, or its key revoked) cancels the session
(``jobs/service.SessionStopped``, implemented by ``cancel_session``).
"""

from __future__ import annotations

from collections.abc import Sequence

from lowart.storage.jobs import JobRepository
from lowart.storage.tools import ToolRepository
from lowart.tools.loop import Outcome


class JobsOfSessions:
    """The jobs paused on confirmation sessions, as the sessions settle them."""

    def __init__(self, repo: JobRepository) -> None:
        self._repo = repo

    async def resumed(self, job_id: str, outcome: Outcome, now: float) -> None:
        """``completed`` with the answer, or ``require_confirmation`` again on a new session."""
        if outcome.paused:
            await self._repo.settle_paused(
                job_id, now, status="require_confirmation", session_id=outcome.session_id
            )
        else:
            await self._repo.settle_paused(job_id, now, status="completed", result=outcome.body)

    async def failed(self, job_id: str, message: str, now: float) -> None:
        await self._repo.settle_paused(job_id, now, status="failed", error=message)

    async def expired(self, session_ids: Sequence[str], now: float) -> int:
        return await self._repo.fail_unconfirmed(session_ids, now)


class SessionsOfJobs:
    """The confirmation sessions of jobs, as the jobs stop."""

    def __init__(self, repo: ToolRepository) -> None:
        self._repo = repo

    async def cancel_session(self, session_id: str, now: float) -> None:
        """A stopped job's session: a pending one ends ``cancelled``; its calls never run."""
        await self._repo.set_session_status(session_id, "cancelled", now, only_from="pending")
