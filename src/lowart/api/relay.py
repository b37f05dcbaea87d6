"""The chat endpoints' shared flow: parse once, validate, admit, then answer whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from lowart.api.asgi import (
    Receive,
    Scope,
    Send,
    parse_object,
    read_body,
    send_bytes,
    send_json,
)
from lowart.api.chat import ChatFields
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.api.stream import WriteTimeout, relay_sse
from lowart.dispatch.attempt import Admission
from lowart.dispatch.flow import Dispatcher
from lowart.entries import Principal
from lowart.errors import InvalidRequest
from lowart.formats.anthropic_events import message_events
from lowart.formats.ids import ANTHROPIC
from lowart.formats.openai import completion_chunks
from lowart.jobs.service import CHAT, JobService
from lowart.providers.base import ChatRequest
from lowart.tools.loop import ToolLoop

Validate = Callable[[dict[str, Any]], ChatFields]


def passed_headers(scope: Scope, names: tuple[bytes, ...]) -> dict[str, str]:
    """The allowlisted client headers a same-format vendor may see (never credentials)."""
    if not names:
        return {}
    return {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in names}


PAUSE_FIELDS = ("status", "session_id", "expires_at", "tool_calls")


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


class ChatEndpoint:
    """A raw ASGI chat endpoint for one wire format (``/v1/chat/completions``, ``/v1/messages``)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        jobs: JobService,
        tools: ToolLoop,
        fmt: str,
        validate: Validate,
        write_timeout: WriteTimeout,
        headers: tuple[bytes, ...] = (),
    ) -> None:
        self._dispatcher = dispatcher
        self._write_timeout = write_timeout
        self._jobs = jobs
        self._tools = tools
        self._fmt = fmt
        self._validate = validate
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope)
        raw = await read_body(scope, receive)
        body = parse_object(raw)
        fields = self._validate(body)
        admission = await self._dispatcher.admit(principal, fields.model, body, len(raw))
        if fields.is_async:
            await self._submit(send, principal, fields, body, admission)
            return
        request = ChatRequest(
            body=body,
            stream=fields.stream,
            wants_usage=fields.wants_usage,
            request_id=scope[REQUEST_ID_KEY],
            fmt=self._fmt,
            headers=passed_headers(scope, self._headers),
            user_id=principal.user_id,
        )
        if self._tools.wants_tools(body):
            await self._with_tools(receive, send, principal, admission, request)
            return
        if not fields.stream:
            served = await self._dispatcher.complete(admission, request)
            await send_bytes(send, 200, served.body, served.headers)
            return
        streaming = await self._dispatcher.stream(admission, request)
        await relay_sse(receive, send, streaming.headers, streaming.events, self._write_timeout)

    async def _with_tools(
        self,
        receive: Receive,
        send: Send,
        principal: Principal,
        admission: Admission,
        request: ChatRequest,
    ) -> None:
        """Gateway-run tools: rounds run whole; a stream then tells the outcome as events."""
        outcome = await self._tools.run(principal, admission, request)
        headers = admission.rpm.headers() if admission.rpm else []
        if not request.stream:
            await send_json(send, 200, outcome.body, headers)
            return
        extra = {k: outcome.body[k] for k in PAUSE_FIELDS if k in outcome.body}
        if self._fmt == ANTHROPIC:
            events = message_events(outcome.body, extra)
        else:
            events = completion_chunks(outcome.body, request.wants_usage, extra)
        await relay_sse(receive, send, headers, _replay(events), self._write_timeout)

    async def _submit(
        self,
        send: Send,
        principal: Principal,
        fields: ChatFields,
        body: dict[str, Any],
        admission: Admission,
    ) -> None:
        """``"async": true``: admitted now (the RPM window counts it), run as a job later."""
        await self._dispatcher.release(admission)
        if fields.stream:
            raise InvalidRequest(
                "An async job cannot stream; send 'stream' false or no 'async'.", param="stream"
            )
        stored = {k: v for k, v in body.items() if k != "async"}
        job = await self._jobs.submit(
            principal, CHAT, fields.model, {"body": stored, "fmt": self._fmt}
        )
        await send_json(
            send,
            202,
            {"status": "async_started", "job_id": job.job_id, "model": fields.model},
            admission.rpm.headers() if admission.rpm else None,
        )
