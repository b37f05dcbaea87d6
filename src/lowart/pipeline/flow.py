"""The pipeline of a request, in one place: admit (RPM, quota) → route (the model chain) → run
(plain, tool loop, or a job) → an outcome the edge renders; billing follows the attempts.

Authentication happened at the edge (``api/middleware.py``); the operation's parser has read the
body. A request with ``"async": true`` is submitted as a job: its model is checked and the RPM
window counts it now, and its quota is reserved when it runs (``JobExecutor``), so that each
limit applies once (docs/api.md, "Jobs").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lowart.dispatch.flow import Dispatcher
from lowart.dispatch.traced import operation_name
from lowart.errors import InvalidRequest
from lowart.jobs.service import JobService
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Outcome, Submitted
from lowart.pipeline.stages import Stages
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
from lowart.telemetry.tracing import REQUEST_MODEL, annotate_current


class Pipeline:
    """Serves one request of any registered operation."""

    def __init__(self, stages: Stages, jobs: JobService, *, traced: bool = False) -> None:
        self._stages = stages
        self._dispatcher: Dispatcher = stages.dispatcher
        self._jobs = jobs
        self._traced = traced  # tracing on: the request span (api/traced.py) is current

    async def serve(
        self,
        op: Operation,
        principal: Principal,
        fields: OperationFields,
        body: dict[str, Any],
        body_bytes: int,
        *,
        request_id: str,
        headers: Mapping[str, str],
        raw_headers: Sequence[tuple[bytes, bytes]] = (),
        preferred_deployment: str | None = None,
    ) -> Outcome:
        """Admit, route and run ``body``: the outcome to render in the caller's format."""
        if self._traced:
            operation = operation_name(op.fmt)
            annotate_current({REQUEST_MODEL: fields.model}, f"{operation} {fields.model}")
        if fields.is_async:
            return await self._submit(op, principal, fields, body)
        admission = await self._dispatcher.admit(
            principal, fields.model, body, body_bytes, operation=op.kind
        )
        request = ChatRequest(
            body=body,
            stream=fields.stream,
            wants_usage=fields.wants_usage,
            request_id=request_id,
            fmt=op.fmt,
            headers=headers,
            user_id=principal.user_id,
            raw_headers=raw_headers,
            preferred_deployment=preferred_deployment,
        )
        return await self._stages.run(admission, request, tools=op.tools)

    async def _submit(
        self,
        op: Operation,
        principal: Principal,
        fields: OperationFields,
        body: dict[str, Any],
    ) -> Submitted:
        """``"async": true``: the model checked and the RPM window counted now; run later."""
        if fields.stream:
            raise InvalidRequest(
                "An async job cannot stream; send 'stream' false or no 'async'.", param="stream"
            )
        rpm = await self._dispatcher.admit_job(principal, fields.model, operation=op.kind)
        stored = {k: v for k, v in body.items() if k != "async"}
        job = await self._jobs.submit(
            principal, op.job_kind, fields.model, {"body": stored, "fmt": op.fmt}
        )
        if self._traced:
            annotate_current({"lowart.job_id": job.job_id})
        return Submitted(job.job_id, fields.model, rpm.headers() if rpm else [])
