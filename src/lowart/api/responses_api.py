"""``POST /v1/responses``: OpenAI's Responses API on the one pipeline (docs/api.md, "Responses").

The edge owns what the vendors must not: response ids and history. The conversation a
``previous_response_id`` continues is rebuilt from the stored responses and sent whole as
``input``; ``mcp_approval_response`` items resume the tool session the previous response paused
on; ``background`` submits a job. A stored response is written before the caller is told it
is complete (before ``response.completed`` in a stream), so the next turn may land anywhere.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import msgspec

from lowart.api.asgi import (
    Receive,
    Scope,
    Send,
    parse_object,
    read_body,
    send_bytes,
    send_json,
)
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.api.stream import WriteTimeout, relay_sse
from lowart.dispatch.attempt import Served, Streaming
from lowart.errors import InvalidRequest
from lowart.formats.ids import RESPONSES, response_id
from lowart.formats.responses_mcp import approvals
from lowart.formats.responses_output import response_events
from lowart.formats.responses_request import check_responses, input_items
from lowart.formats.sse import SSEParser
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Answered, Outcome, Paused, Submitted
from lowart.pipeline.responses_book import ResponseBook, queued
from lowart.pipeline.responses_tools import as_chat, told_as_response
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
from lowart.storage.responses import StoredResponse
from lowart.tools.loop import ToolLoop
from lowart.tools.sessions import Confirmations

TERMINAL = (b"response.completed", b"response.incomplete", b"response.failed")


def _fields(body: dict[str, Any]) -> OperationFields:
    check_responses(body)
    stream = body.get("stream") is True
    return OperationFields(model=body["model"], stream=stream, wants_usage=True, is_async=False)


RESPONSES_OPERATION = Operation("responses", RESPONSES, _fields, None)


class _Turn:
    """One request's parts: the body as sent on (the whole conversation as ``input``), its own
    input items, its size for the quota's estimate, whether it is kept and streamed, and the
    deployment that served the response it continues (tried first: docs/api.md, "Sticky
    sessions")."""

    def __init__(
        self,
        body: dict[str, Any],
        turn: list[dict[str, Any]],
        scope: Scope,
        size: int,
        previous: StoredResponse | None,
    ) -> None:
        self.body = body
        self.turn = turn
        self.request_id: str = scope[REQUEST_ID_KEY]
        self.raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        self.size = size
        self.preferred = previous.deployment if previous is not None else None
        self.store = body.get("store") is not False
        self.stream = body.get("stream") is True


class ResponsesEndpoint:
    """A raw ASGI endpoint for ``POST /v1/responses``."""

    def __init__(
        self,
        pipeline: Pipeline,
        book: ResponseBook,
        tools: ToolLoop,
        confirmations: Confirmations,
        write_timeout: WriteTimeout,
    ) -> None:
        self._pipeline = pipeline
        self._book = book
        self._tools = tools
        self._confirmations = confirmations
        self._write_timeout = write_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope)
        raw = await read_body(scope, receive, None)
        body = parse_object(raw)
        fields = RESPONSES_OPERATION.parse(body)
        turn = input_items(body)
        history, previous = await self._book.history(principal, body.get("previous_response_id"))
        sent = {**body, "input": history + turn}
        size = len(msgspec.json.encode(sent)) if history else len(raw)  # what the vendor reads
        parts = _Turn(sent, turn, scope, size, previous)
        decided = approvals(turn)
        if decided is not None:
            session = previous.session_id if previous is not None else None
            await self._confirm(
                receive, send, principal, parts, session_id=session, decided=decided
            )
        elif body.get("background") is True:
            await self._background(send, principal, parts, fields)
        else:
            await self._serve(receive, send, principal, parts, fields)

    def _run(
        self, principal: Principal, parts: _Turn, fields: OperationFields
    ) -> Awaitable[Outcome]:
        return self._pipeline.serve(
            RESPONSES_OPERATION,
            principal,
            fields,
            parts.body,
            parts.size,
            request_id=parts.request_id,
            headers={},
            raw_headers=parts.raw_headers,
            preferred_deployment=parts.preferred,
        )

    async def _serve(
        self,
        receive: Receive,
        send: Send,
        principal: Principal,
        parts: _Turn,
        fields: OperationFields,
    ) -> None:
        outcome = await self._run(principal, parts, fields)
        if isinstance(outcome, Served):
            if parts.store:
                answer = msgspec.json.decode(outcome.body)
                await self._keep(principal, parts, answer, deployment=outcome.deployment)
            await send_bytes(send, 200, outcome.body, outcome.headers)
        elif isinstance(outcome, Streaming):
            events = self._kept_stream(principal, parts, outcome)
            await relay_sse(receive, send, outcome.headers, events, self._write_timeout)
        else:
            assert isinstance(outcome, Answered | Paused)  # not submitted: no async
            session = outcome.session_id if isinstance(outcome, Paused) else None
            await self._answer(
                receive, send, principal, parts, response=outcome.body, session_id=session
            )

    async def _keep(
        self,
        principal: Principal,
        parts: _Turn,
        response: dict[str, Any],
        session_id: str | None = None,
        deployment: str | None = None,
    ) -> None:
        if parts.store:
            await self._book.keep(
                principal,
                parts.body,
                parts.turn,
                response,
                session_id=session_id,
                deployment=deployment,
            )

    async def _answer(
        self,
        receive: Receive,
        send: Send,
        principal: Principal,
        parts: _Turn,
        *,
        response: dict[str, Any],
        session_id: str | None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """A Response the gateway composed (gateway-run tools): kept, then sent whole or told
        as events."""
        await self._keep(principal, parts, response, session_id)
        if not parts.stream:
            await send_json(send, 200, response, headers or [])
            return
        await relay_sse(
            receive, send, headers or [], _replay(response_events(response)), self._write_timeout
        )

    async def _kept_stream(
        self, principal: Principal, parts: _Turn, outcome: Streaming
    ) -> AsyncIterator[bytes]:
        """The stream as it comes; the final response is stored before its last event goes."""
        parser = SSEParser()
        async for chunk in outcome.events:
            if parts.store and any(name in chunk for name in TERMINAL):
                for event in parser.feed(chunk):
                    data: Any = msgspec.json.decode(event.data) if event.data else None
                    if isinstance(data, dict) and data.get("type", "").encode() in TERMINAL:
                        served = outcome.deployment
                        await self._keep(principal, parts, data["response"], deployment=served)
            yield chunk

    async def _background(
        self,
        send: Send,
        principal: Principal,
        parts: _Turn,
        fields: OperationFields,
    ) -> None:
        """``background: true``: a durable job; the caller polls ``GET /v1/responses/{id}``."""
        if not parts.store:
            raise InvalidRequest("'background' needs 'store' true.", param="background")
        if parts.stream:
            raise InvalidRequest(
                "A background response cannot stream here; poll it instead.", param="stream"
            )
        fields.is_async = True
        submitted = await self._run(principal, parts, fields)
        assert isinstance(submitted, Submitted)  # is_async always submits
        response = queued(parts.body, response_id(submitted.job_id), time.time())
        await self._book.keep(principal, parts.body, parts.turn, response, job_id=submitted.job_id)
        await send_json(send, 200, response, submitted.headers)

    async def _confirm(
        self,
        receive: Receive,
        send: Send,
        principal: Principal,
        parts: _Turn,
        *,
        session_id: str | None,
        decided: dict[str, bool],
    ) -> None:
        """``mcp_approval_response`` items: the paused session runs the approved calls (the
        same session ``POST /v1/tools/confirm`` answers: whichever comes second gets 409)."""
        if session_id is None:
            raise InvalidRequest(
                "mcp_approval_response items answer the approval requests of the previous "
                "response; send its id as 'previous_response_id'.",
                param="previous_response_id",
            )
        approved = [call for call, yes in decided.items() if yes]
        outcome = await self._confirmations.confirm(
            principal, session_id, approved, parts.request_id
        )
        request = ChatRequest(
            body=parts.body,
            stream=False,
            wants_usage=False,
            request_id=parts.request_id,
            fmt=RESPONSES,
            user_id=principal.user_id,
        )
        chat = as_chat(request)
        offered = self._tools.offer(chat.body) if self._tools.wants_tools(chat.body) else []
        response = told_as_response(outcome, request, offered, approved=decided.keys())
        await self._answer(
            receive, send, principal, parts, response=response, session_id=outcome.session_id
        )


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event
