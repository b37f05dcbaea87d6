"""The transform stage: a model's script reshapes the request before admission, and the answer
after billing (docs/transforms.md, "Where scripts run").

``on_request`` runs once, before admission, so every limit (the allowlist, the quota, the RPM
window) applies to the request as the script left it, and every retry and fallback sends it. A
different ``model`` in what it returns reroutes the request: admitted (the allowlist's 404
included) and billed as that model. ``on_response`` reshapes a whole answer and ``on_chunk``
each streamed event, after the vendor's usage was read for billing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from lowart.dispatch.attempt import Served, Streaming, stream_error
from lowart.errors import LowartError, TransformFailed
from lowart.formats.sse import SSEEvent, SSEParser, encode_event
from lowart.pipeline.operation import Operation, OperationFields
from lowart.pipeline.outcomes import Answered, Outcome
from lowart.transforms.runner import Context, Transforms
from lowart.transforms.table import CHUNK, REQUEST, RESPONSE, Script

# What decides how a request is served, so a script may not change it: the edge has decided.
FIXED = ("stream", "async", "background")


@dataclass(slots=True)
class Transformed:
    """The request as the script left it: re-parsed, with its new size."""

    fields: OperationFields
    body: dict[str, Any]
    body_bytes: int


class TransformStage:
    """Runs a model's script around one request."""

    def __init__(self, transforms: Transforms) -> None:
        self._transforms = transforms
        self.script_for = transforms.table.for_model  # one dict lookup per request

    async def request(
        self,
        op: Operation,
        script: Script,
        fields: OperationFields,
        body: dict[str, Any],
        ctx: Context,
    ) -> Transformed | None:
        """``on_request``: the request to send, or None when the script does not run on it."""
        if not script.runs(REQUEST):
            return None
        new = await self._transforms.apply(script, REQUEST, body, ctx)
        if new is body:  # skipped after an error: as it came
            return None
        new_fields = op.parse(new)  # the caller's format still: a 400 if the script broke it
        moved = [name for name in FIXED if new.get(name) != body.get(name)]
        if new_fields.stream != fields.stream or moved:
            raise TransformFailed("A transform may not change 'stream', 'async' or 'background'.")
        new_fields.is_async = fields.is_async  # as the edge decided (a Responses 'background')
        return Transformed(new_fields, new, len(msgspec.json.encode(new)))

    async def answer(self, script: Script, outcome: Outcome, ctx: Context, fmt: str) -> Outcome:
        """``on_response`` on a whole answer, ``on_chunk`` on each streamed event."""
        if isinstance(outcome, Streaming) and script.runs(CHUNK):
            outcome.events = self._chunks(script, outcome.events, ctx, fmt)
        elif isinstance(outcome, Served) and script.runs(RESPONSE):
            outcome = await self._whole(script, outcome, ctx)
        elif isinstance(outcome, Answered) and script.runs(RESPONSE):
            outcome.body = await self._transforms.apply(script, RESPONSE, outcome.body, ctx)
        return outcome

    async def _whole(self, script: Script, outcome: Served, ctx: Context) -> Served:
        try:
            body = msgspec.json.decode(outcome.body)
        except msgspec.DecodeError:
            return outcome  # not JSON: nothing a script could read
        if not isinstance(body, dict):
            return outcome
        new = await self._transforms.apply(script, RESPONSE, body, ctx)
        return outcome if new is body else Served(msgspec.json.encode(new), outcome.headers)

    async def _chunks(
        self, script: Script, events: AsyncIterator[bytes], ctx: Context, fmt: str
    ) -> AsyncIterator[bytes]:
        """Each event's JSON object through ``on_chunk`` (None drops the event), the events of
        one upstream read in one worker call; a failure ends the stream with an error event in
        the caller's format."""
        parser = SSEParser()
        try:
            async for raw in events:
                out = await self._events(script, parser.feed(raw), ctx)
                if out:
                    yield out
        except LowartError as exc:
            yield stream_error(exc, fmt)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _events(self, script: Script, events: list[SSEEvent], ctx: Context) -> bytes:
        chunks = [msgspec.json.decode(e.data) for e in events if e.data.startswith(b"{")]
        results = iter(
            await self._transforms.apply_each(script, CHUNK, chunks, ctx) if chunks else []
        )
        out = []
        for event in events:
            if not event.data.startswith(b"{"):  # [DONE], pings
                out.append(encode_event(event.data, event.event))
            elif (new := next(results)) is not None:
                out.append(encode_event(msgspec.json.encode(new), event.event))
        return b"".join(out)
