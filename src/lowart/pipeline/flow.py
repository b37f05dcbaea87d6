"""The pipeline of a request, in one place: admit (RPM, quota) → route (the model chain) → run
(plain, tool loop, or a job) → an outcome the edge renders; billing follows the attempts.

Authentication happened at the edge (``api/middleware.py``); the operation's parser has read the
body. A request with ``"async": true`` is submitted as a job: its model is checked and the RPM
window counts it now, and its quota is reserved when it runs (``JobExecutor``), so that each
limit applies once (docs/api.md, "Jobs"). A model with a transform script runs it around the
rest (``TransformStage``); a model without one pays a dict lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lowart.dispatch.flow import Dispatcher
from lowart.dispatch.traced import operation_name
from lowart.errors import InvalidRequest
from lowart.jobs.service import JobService
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Outcome, Submitted
from lowart.pipeline.stages import Stages
from lowart.pipeline.transform_stage import TransformStage
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
from lowart.telemetry.tracing import REQUEST_MODEL, annotate_current
from lowart.transforms.runner import Context
from lowart.transforms.table import Script


@dataclass(frozen=True, slots=True)
class Edge:
    """What the edge passes along with a request, beside its body."""

    request_id: str
    headers: Mapping[str, str]
    raw_headers: Sequence[tuple[bytes, bytes]] = ()
    preferred_deployment: str | None = None  # a sticky session's deployment


class Pipeline:
    """Serves one request of any registered operation."""

    def __init__(
        self, stages: Stages, jobs: JobService, transform: TransformStage, *, traced: bool = False
    ) -> None:
        self._stages = stages
        self._dispatcher: Dispatcher = stages.dispatcher
        self._jobs = jobs
        self._transform = transform
        self._script_for = transform.script_for
        self._traced = traced  # tracing on: the request span (api/traced.py) is current

    def serve(
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
    ) -> Awaitable[Outcome]:
        """Admit, route and run ``body``: the outcome to render in the caller's format (a plain
        function: a model without a script gets the awaitable of ``_plain`` itself)."""
        edge = Edge(request_id, headers, raw_headers, preferred_deployment)
        script = self._script_for(fields.model)
        if script is not None:
            return self._transformed(op, script, principal, (fields, body, body_bytes), edge)
        return self._plain(op, principal, fields, body, body_bytes, edge=edge)

    async def _transformed(
        self,
        op: Operation,
        script: Script,
        principal: Principal,
        request: tuple[OperationFields, dict[str, Any], int],
        edge: Edge,
    ) -> Outcome:
        """``on_request`` before admission; ``on_response`` or ``on_chunk`` on the answer."""
        fields, body, size = request
        ctx = Context(principal.user_id, fields.model, edge.request_id, op.fmt, principal.team_id)
        new = await self._transform.request(op, script, fields, body, ctx)
        if new is not None:
            fields, body, size = new.fields, new.body, new.body_bytes
        outcome = await self._plain(op, principal, fields, body, size, edge=edge)
        return await self._transform.answer(script, outcome, ctx, op.fmt)

    async def _plain(
        self,
        op: Operation,
        principal: Principal,
        fields: OperationFields,
        body: dict[str, Any],
        body_bytes: int,
        *,
        edge: Edge,
    ) -> Outcome:
        """Admit, route and run ``body`` as it is after any transform (a reroute's model is the
        one the request span names)."""
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
            request_id=edge.request_id,
            fmt=op.fmt,
            headers=edge.headers,
            user_id=principal.user_id,
            raw_headers=edge.raw_headers,
            preferred_deployment=edge.preferred_deployment,
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
