"""Chat and image jobs: a request run later, billed once even across crashes.

A chat job cut off mid-call by a crash is run again once. If the cut-off attempt had already been
billed (its usage row was written), it is failed instead, so that it is never billed twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lowart.catalog.directory import Directory
from lowart.dispatch.flow import Dispatcher
from lowart.entries import Operation
from lowart.errors import LowartError, PermissionDenied
from lowart.formats.ids import IMAGES
from lowart.jobs.runner import KEY_REVOKED, AwaitingConfirmation, JobCancelled, JobContext
from lowart.providers.base import ChatRequest
from lowart.storage.jobs import JobRow
from lowart.storage.usage import UsageRepository
from lowart.tools.loop import ToolLoop

MAX_RUNS = 2  # the first run, and one more after a crash


class ChatJobs:
    """Runs stored chat requests through the dispatcher."""

    def __init__(
        self,
        directory: Directory,
        dispatcher: Dispatcher,
        usage: UsageRepository,
        tools: ToolLoop,
    ) -> None:
        self._directory = directory
        self._dispatcher = dispatcher
        self._usage = usage
        self._tools = tools

    async def __call__(self, job: JobRow, context: JobContext) -> dict[str, Any]:
        stored = msgspec.json.decode(job.request)
        if job.attempts > 1:
            await self._check_rerun(job)
        principal = self._directory.principal_of_user(job.user_id, job.key_id)
        if principal is None or not principal.active:
            raise PermissionDenied("The job's user is disabled.")
        if self._directory.key_revoked(job.key_id):
            raise JobCancelled(KEY_REVOKED)
        body: dict[str, Any] = stored["body"]
        fmt = stored["fmt"]
        admission = await self._dispatcher.admit(
            principal,
            job.model,
            body,
            len(msgspec.json.encode(body)),
            count_rpm=False,
            operation=Operation.IMAGES if fmt == IMAGES else Operation.CHAT,
        )
        request = ChatRequest(
            body=body,
            stream=False,
            wants_usage=False,
            request_id=job.job_id,
            fmt=fmt,
            user_id=job.user_id,
            job=context,
        )
        if self._tools.wants_tools(body):
            outcome = await self._tools.run(principal, admission, request, job_id=job.job_id)
            if outcome.session_id is not None:
                raise AwaitingConfirmation(outcome.session_id)
            return outcome.body
        served = await self._dispatcher.complete(admission, request)
        result: dict[str, Any] = msgspec.json.decode(served.body)
        return result

    async def _check_rerun(self, job: JobRow) -> None:
        if job.attempts > MAX_RUNS:
            raise LowartError("The job was interrupted twice; it is not run again.")
        if (await self._usage.count_by_status(job.job_id)).get("ok"):
            raise LowartError(
                "The job was interrupted after its answer was billed; "
                "it is not run again, so that it is not billed twice."
            )
