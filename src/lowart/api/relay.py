"""The edge of every registered operation: read and parse the body once, hand it to the pipeline,
and render the outcome in the caller's format: whole, streamed, a job's 202, or a pause."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from lowart.pipeline.flow import Pipeline
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Answered, Paused, Submitted


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
        max_body: int | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._op = op
        self._write_timeout = write_timeout
        self._max_body = max_body  # the operation's own cap (MAX_BODY_BYTES applies too)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op = self._op
        principal = principal_of(scope)
        raw = await read_body(scope, receive, self._max_body)
        body = parse_object(raw)
        fields = op.parse(body)
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
