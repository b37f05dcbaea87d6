"""The edge of every registered operation: read and parse the body once, hand it to the pipeline,
and render the outcome in the caller's format: whole, streamed, a job's 202, or a pause."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from lowart.api.logged import Capture, failed
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.api.stream import WriteTimeout, relay_sse
from lowart.dispatch.attempt import Served, Streaming
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Answered, Outcome, Paused, Submitted
from lowart.usage.request_logs import RequestLogEntry, RequestLogs


def passed_headers(scope: Scope, names: tuple[bytes, ...]) -> dict[str, str]:
    """The allowlisted client headers a same-format vendor may see (never credentials)."""
    if not names:
        return {}
    return {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in names}


PAUSE_FIELDS = ("status", "session_id", "expires_at", "tool_calls")


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


class OperationEndpoint:
    """A raw ASGI endpoint for one operation (``/v1/chat/completions``, ``/v1/messages``,
    ``/v1/images/generations``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        op: Operation,
        write_timeout: WriteTimeout,
        logs: RequestLogs,
        max_body: int | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._op = op
        self._write_timeout = write_timeout
        self._logs = logs
        self._max_body = max_body  # the operation's own cap (MAX_BODY_BYTES applies too)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op = self._op
        principal = principal_of(scope)
        raw = await read_body(scope, receive, self._max_body)
        body = parse_object(raw)
        fields = op.parse(body)
        logs = self._logs
        if logs.everything or fields.model in logs.models:  # docs/operations.md, "Request logs"
            await self._logged(scope, receive, send, fields=fields, body=body, raw=raw)
            return
        outcome = await self._pipeline.serve(
            op,
            principal,
            fields,
            body,
            len(raw),
            request_id=scope[REQUEST_ID_KEY],
            headers=passed_headers(scope, op.headers),
            raw_headers=scope["headers"],
        )
        if isinstance(outcome, Served):
            await send_bytes(send, 200, outcome.body, outcome.headers)
        elif isinstance(outcome, Streaming):
            await relay_sse(receive, send, outcome.headers, outcome.events, self._write_timeout)
        else:
            await self._render(receive, send, fields, outcome)

    async def _logged(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        fields: OperationFields,
        body: dict[str, Any],
        raw: bytes,
    ) -> None:
        """The same, with the answer noted and the entry queued at the end, however it ends."""
        entry = RequestLogEntry(
            scope[REQUEST_ID_KEY], principal_of(scope).user_id, fields.model, fields.stream, raw
        )
        keep = self._logs.stream_keep if fields.stream else None
        capture = Capture(entry, send, keep, self._logs)
        try:
            outcome = await self._pipeline.serve(
                self._op,
                principal_of(scope),
                fields,
                body,
                len(raw),
                request_id=scope[REQUEST_ID_KEY],
                headers=passed_headers(scope, self._op.headers),
            )
            await self._answer(receive, capture, fields, outcome)
        except BaseException as exc:
            failed(capture, exc, scope["path"])
            raise
        finally:
            capture.queue()

    async def _answer(
        self, receive: Receive, send: Send, fields: OperationFields, outcome: Outcome
    ) -> None:
        """Send any outcome (the logged path; the plain one does the same inline)."""
        if isinstance(outcome, Served):
            await send_bytes(send, 200, outcome.body, outcome.headers)
        elif isinstance(outcome, Streaming):
            await relay_sse(receive, send, outcome.headers, outcome.events, self._write_timeout)
        else:
            await self._render(receive, send, fields, outcome)

    async def _render(
        self,
        receive: Receive,
        send: Send,
        fields: OperationFields,
        outcome: Answered | Paused | Submitted,
    ) -> None:
        """A job's 202; or an answer the gateway composed (tool loop): whole, or told as events
        at the end of its rounds when the caller asked for a stream."""
        if isinstance(outcome, Submitted):
            await send_json(send, 202, outcome.body(), outcome.headers)
            return
        if not fields.stream or self._op.events is None:
            await send_json(send, 200, outcome.body, outcome.headers)
            return
        extra = {k: outcome.body[k] for k in PAUSE_FIELDS if k in outcome.body}
        events = self._op.events(outcome.body, fields.wants_usage, extra)
        await relay_sse(receive, send, outcome.headers, _replay(events), self._write_timeout)
