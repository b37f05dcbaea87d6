"""Confirmation sessions: a person approves or rejects the calls a tool loop paused on.

Only the session's owner may confirm (anyone else gets 404); a session confirms once (409 after
that, and two concurrent confirms run the calls once); an expired one gets 410. A session that
belongs to a job resumes that job: its answer becomes the job's result. The jobs themselves are
not this package's: ``WaitingJobs`` is how a session tells its job, wired by the pipeline
(``pipeline/job_tools.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from lowart.errors import Conflict, Expired, InvalidRequest, LowartError, NotFound
from lowart.principal import Principal
from lowart.storage.tools import SessionRow, ToolRepository
from lowart.tools.calls import Call
from lowart.tools.loop import REJECTED, Outcome, ToolLoop
from lowart.tools.policy import CONFIRM


class WaitingJobs(Protocol):
    """The jobs paused on sessions, as this package sees them."""

    async def resumed(self, job_id: str, outcome: Outcome, now: float) -> None:
        """The job's session was confirmed: its answer, or a pause on a new session."""

    async def failed(self, job_id: str, message: str, now: float) -> None:
        """The job's session failed: the job must not wait on it any more."""

    async def expired(self, session_ids: Sequence[str], now: float) -> int:
        """Sessions nobody confirmed in time: the jobs waiting on them end. How many did."""


class Confirmations:
    """Confirms sessions, and expires the ones nobody confirmed."""

    def __init__(
        self,
        *,
        loop: ToolLoop,
        repo: ToolRepository,
        jobs: WaitingJobs,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = loop
        self._repo = repo
        self._jobs = jobs
        self._clock = clock

    async def pending(self, principal: Principal) -> list[dict[str, Any]]:
        """The caller's sessions awaiting a decision."""
        sessions = await self._repo.pending_sessions(principal.user_id, self._clock())
        return [
            {
                "session_id": s.session_id,
                "status": "require_confirmation",
                "expires_at": math.ceil(s.expires_at),
                "job_id": s.job_id,
                "tool_calls": [
                    {k: c[k] for k in ("id", "name", "arguments", "server")}
                    for c in msgspec.json.decode(s.pending)
                ],
            }
            for s in sessions
        ]

    async def confirm(
        self, principal: Principal, session_id: str, approved: Sequence[str], request_id: str
    ) -> Outcome:
        session = await self._repo.session(session_id, principal.user_id)
        if session is None:
            raise NotFound(f"No session '{session_id[:64]}'.")
        waiting = msgspec.json.decode(session.pending)
        unknown = set(approved) - {c["id"] for c in waiting}
        if unknown:
            raise InvalidRequest(
                f"Not a pending call of this session: {sorted(unknown)[0]}.", param="approved_ids"
            )
        await self._claim(session)
        try:
            results = await self._decide(principal, request_id, session, waiting, set(approved))
            outcome = await self._loop.resume(principal, request_id, session, results)
        except BaseException as exc:
            await self._repo.set_session_status(session_id, "failed", self._clock())
            if session.job_id is not None:  # the job must not wait on a session that is gone
                message = (
                    exc.message if isinstance(exc, LowartError) else "The confirmation failed."
                )
                await self._jobs.failed(session.job_id, message, self._clock())
            raise
        await self._repo.set_session_status(session_id, "done", self._clock())
        if session.job_id is not None:
            await self._jobs.resumed(session.job_id, outcome, self._clock())
        return outcome

    async def _claim(self, session: SessionRow) -> None:
        now = self._clock()
        if session.status == "pending" and session.expires_at <= now:
            await self.expire()
        if await self._repo.claim_session(session.session_id, session.user_id, now):
            return
        again = await self._repo.session(session.session_id, session.user_id)
        if again is not None and again.status == "expired":
            raise Expired("This confirmation session has expired.")
        raise Conflict("This confirmation session was already confirmed.")

    async def _decide(
        self,
        principal: Principal,
        request_id: str,
        session: SessionRow,
        waiting: list[dict[str, Any]],
        approved: set[str],
    ) -> dict[str, str]:
        results = {}
        for item in waiting:
            call = Call(item["id"], item["exposed"], item["arguments"])
            if call.sha256 != item["sha256"]:  # never run arguments other than those shown
                raise Conflict("A pending call's arguments changed after it was shown.")
            if item["id"] in approved:
                results[call.id] = await self._loop.execute(
                    principal,
                    request_id,
                    call,
                    item["server"],
                    item["name"],
                    policy=CONFIRM,
                    approver=principal.user_id,
                    session_id=session.session_id,
                )
            else:
                results[call.id] = REJECTED
                await self._loop.audit(
                    principal,
                    request_id,
                    call,
                    server=item["server"],
                    tool=item["name"],
                    policy=CONFIRM,
                    approver=principal.user_id,
                    outcome="rejected",
                    text=REJECTED,
                    session_id=session.session_id,
                )
        return results

    async def expire(self) -> int:
        """Sessions past their expiry end; jobs waiting on them fail."""
        now = self._clock()
        expired = await self._repo.expire_sessions(now)
        return await self._jobs.expired(expired, now)
