"""The stored responses of the Responses API as a caller sees them (docs/api.md, "Responses"):
by id, their own only (anyone else's is a 404); a background one with its job's status; and a
conversation's items rebuilt from the chain of ``previous_response_id``, so that any vendor,
on any instance, after any restart, can continue it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec

from lowart.errors import NotFound
from lowart.formats.ids import response_id
from lowart.formats.responses_output import response_to_items
from lowart.jobs.service import JobService
from lowart.principal import Principal
from lowart.storage.jobs import JobRow
from lowart.storage.responses import ResponseStore, StoredResponse

# A job's status as a background response's (a job waiting on a person is still in progress).
_STATUS = {
    "pending": "queued",
    "running": "in_progress",
    "require_confirmation": "in_progress",
    "failed": "failed",
    "cancelled": "cancelled",
}
FINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})


def queued(body: dict[str, Any], rid: str, now: float) -> dict[str, Any]:
    """A background response before it ran: what ``background: true`` answers at once."""
    return {
        "id": rid,
        "object": "response",
        "created_at": int(now),
        "status": "queued",
        "background": True,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
    }


def _from_job(stored: dict[str, Any], job: JobRow) -> dict[str, Any]:
    """A background response as its job stands now."""
    if job.status == "completed" and job.result:
        result: dict[str, Any] = msgspec.json.decode(job.result)
        return {**result, "id": stored["id"], "background": True, "store": True}
    response = {**stored, "status": _STATUS.get(job.status, "in_progress")}
    if job.status == "failed":
        response["error"] = {"code": "server_error", "message": job.error or "The job failed."}
    return response


class ResponseBook:
    """Reads, continues and stores responses for their owners."""

    def __init__(
        self, store: ResponseStore, jobs: JobService, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock

    async def get(self, principal: Principal, rid: str) -> StoredResponse:
        stored = await self._store.get(principal.user_id, rid)
        if stored is None:
            raise NotFound(f"No response with id '{rid[:64]}'.")
        return stored

    async def current(self, principal: Principal, stored: StoredResponse) -> dict[str, Any]:
        """The Response now: a background one with its job's status (kept once final)."""
        if stored.job_id is None or stored.response.get("status") in FINAL:
            return stored.response
        try:
            job = await self._jobs.get(principal, stored.job_id)
        except NotFound:
            return stored.response
        response = _from_job(stored.response, job)
        if response["status"] in FINAL:
            await self._store.update_response(stored.id, response)
        return response

    async def history(
        self, principal: Principal, previous: str | None
    ) -> tuple[list[dict[str, Any]], StoredResponse | None]:
        """The items of the conversation ``previous`` ends (oldest first), and that response."""
        if previous is None:
            return [], None
        chain = await self._store.chain(principal.user_id, previous)
        if chain is None:
            raise NotFound(
                f"Previous response with id '{previous[:64]}' not found.",
                param="previous_response_id",
            )
        items: list[dict[str, Any]] = []
        for stored in chain:
            items += stored.input_items
            items += response_to_items(await self.current(principal, stored))
        return items, chain[-1]

    async def keep(
        self,
        principal: Principal,
        body: dict[str, Any],
        turn: list[dict[str, Any]],
        response: dict[str, Any],
        *,
        job_id: str | None = None,
        session_id: str | None = None,
        deployment: str | None = None,
    ) -> None:
        """Store a response with the input items of its own turn (and the deployment that
        served it, which a continuation prefers: docs/api.md, "Sticky sessions")."""
        await self._store.save(
            StoredResponse(
                id=response["id"],
                user_id=principal.user_id,
                model=str(body["model"]),
                previous_response_id=body.get("previous_response_id"),
                input_items=turn,
                response=response,
                job_id=job_id,
                session_id=session_id,
                created_at=self._clock(),
                deployment=deployment,
            )
        )

    async def delete(self, principal: Principal, rid: str) -> None:
        if not await self._store.delete(principal.user_id, rid):
            raise NotFound(f"No response with id '{rid[:64]}'.")

    async def cancel(self, principal: Principal, rid: str) -> dict[str, Any]:
        """Cancel a background response's job; the response as it stands after (one that
        already ended is answered as it is)."""
        stored = await self.get(principal, rid)
        if stored.job_id is None:
            raise NotFound(f"No background response with id '{rid[:64]}'.")
        if (await self.current(principal, stored))["status"] not in FINAL:
            with contextlib.suppress(NotFound):  # it ended meanwhile
                await self._jobs.cancel(principal, stored.job_id)
        return await self.current(principal, await self.get(principal, rid))

    @staticmethod
    def background_id(job_id: str) -> str:
        return response_id(job_id)
