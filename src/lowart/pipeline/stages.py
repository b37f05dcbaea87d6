"""The run stage, shared by requests and jobs: the tool loop for a request that opts into
gateway-run tools, else plain dispatch, whole or streamed. Decided here and nowhere else."""

from __future__ import annotations

from collections.abc import Awaitable

from lowart.dispatch.attempt import Admission, Served, Streaming
from lowart.dispatch.flow import Dispatcher
from lowart.formats.ids import RESPONSES
from lowart.pipeline.outcomes import Answered, Paused
from lowart.pipeline.responses_tools import as_chat, told_as_response
from lowart.providers.base import ChatRequest
from lowart.tools.loop import ToolLoop

Ran = Served | Streaming | Answered | Paused


class Stages:
    """Runs an admitted request: plain dispatch or the tool loop."""

    def __init__(self, dispatcher: Dispatcher, tools: ToolLoop) -> None:
        self.dispatcher = dispatcher
        self._tools = tools

    def run(
        self,
        admission: Admission,
        request: ChatRequest,
        *,
        tools: bool,
        job_id: str | None = None,
    ) -> Awaitable[Ran]:
        """The awaitable of the answer (a plain function: no coroutine of its own per request).
        ``tools``: the operation may opt into gateway-run tools."""
        if tools and self._tools.wants_tools(request.body):
            return self._with_tools(admission, request, job_id)
        if request.stream:
            return self.dispatcher.stream(admission, request)
        return self.dispatcher.complete(admission, request)

    async def _with_tools(
        self, admission: Admission, request: ChatRequest, job_id: str | None
    ) -> Answered | Paused:
        """Gateway-run tools: every round runs whole; the outcome is a JSON object (for a
        Responses caller, a Response: ``pipeline/responses_tools.py``)."""
        run = as_chat(request) if request.fmt == RESPONSES else request
        outcome = await self._tools.run(admission.principal, admission, run, job_id=job_id)
        body = outcome.body
        if request.fmt == RESPONSES:
            body = told_as_response(outcome, request, self._tools.offer(run.body))
        headers = admission.rpm.headers() if admission.rpm else []
        if outcome.session_id is not None:
            return Paused(body, outcome.session_id, headers)
        return Answered(body, headers)
