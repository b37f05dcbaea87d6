"""The run half of a submitted request: a stored chat or image job through the same stages.

Before it runs, the job is re-checked: a third run, or a rerun of an answer already billed, is
refused (``jobs/chat.py``); a disabled user fails it; a revoked key cancels it. It is then
admitted without counting the RPM window (counted at submit) and with its quota reserved now.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lowart.catalog.directory import Directory
from lowart.dispatch.attempt import Served
from lowart.errors import PermissionDenied
from lowart.formats.ids import IMAGES
from lowart.jobs.chat import check_rerun
from lowart.jobs.runner import KEY_REVOKED, AwaitingConfirmation, JobCancelled, JobContext
from lowart.model_entry import OperationKind
from lowart.pipeline.outcomes import Answered, Paused
from lowart.pipeline.stages import Stages
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
from lowart.storage.jobs import JobRow
from lowart.storage.usage import UsageRepository


class JobExecutor:
    """The job runner's executor for ``chat`` and ``images`` jobs."""

    def __init__(self, directory: Directory, stages: Stages, usage: UsageRepository) -> None:
        self._directory = directory
        self._stages = stages
        self._usage = usage

    async def __call__(self, job: JobRow, context: JobContext) -> dict[str, Any]:
        stored = msgspec.json.decode(job.request)
        if job.attempts > 1:
            await check_rerun(job, self._usage)
        principal = self._principal(job)
        body: dict[str, Any] = stored["body"]
        fmt = stored["fmt"]
        admission = await self._stages.dispatcher.admit(
            principal,
            job.model,
            body,
            len(msgspec.json.encode(body)),
            count_rpm=False,
            operation=OperationKind.IMAGES if fmt == IMAGES else OperationKind.CHAT,
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
        outcome = await self._stages.run(admission, request, tools=True, job_id=job.job_id)
        if isinstance(outcome, Paused):
            raise AwaitingConfirmation(outcome.session_id)
        if isinstance(outcome, Answered):
            return outcome.body
        assert isinstance(outcome, Served)  # a job never streams
        result: dict[str, Any] = msgspec.json.decode(outcome.body)
        return result

    def _principal(self, job: JobRow) -> Principal:
        """The job runs as the key that submitted it, if the user and the key still may."""
        principal = self._directory.principal_of_user(job.user_id, job.key_id)
        if principal is None or not principal.active:
            raise PermissionDenied("The job's user is disabled.")
        if self._directory.key_revoked(job.key_id):
            raise JobCancelled(KEY_REVOKED)
        return principal
