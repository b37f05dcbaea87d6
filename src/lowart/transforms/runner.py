"""Running one entry point of a script in the pool, and what its outcome means for the request:
the value to use, a 400 (the script's ``fail(msg)``), or a 500 ``transform_failed``, which a
script with ``on_error: "skip"`` turns into passing the value through as it was
(docs/transforms.md, "Errors").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from lowart.errors import InvalidRequest, TransformFailed, TransformRejected
from lowart.transforms.pool import WorkerPool
from lowart.transforms.protocol import Call, Reply
from lowart.transforms.table import CHUNK, Script, TransformTable, source_key

log = structlog.get_logger()

ENTRY_POINTS = ("on_request", "on_response", "on_chunk")


@dataclass(frozen=True, slots=True)
class Context:
    """What a script may know of the request (it gets a copy: it cannot change it)."""

    user_id: str
    model: str
    request_id: str
    format: str  # the caller's wire format: "openai", "anthropic", "responses", …
    team: str | None = None
    deployment: str | None = None

    def value(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "team": self.team,
            "model": self.model,
            "deployment": self.deployment,
            "request_id": self.request_id,
            "format": self.format,
        }


def summary(message: str) -> str:
    """The interpreter's first error line and where it happened, without the script's source
    lines (a caller sees this; the admin's test route shows the whole message)."""
    lines = message.splitlines() or ["error"]
    first = next((line for line in lines if line.startswith("error: ")), lines[0])[:300]
    where = next((line.strip()[4:] for line in lines if line.strip().startswith("--> ")), "")
    return f"{first.removeprefix('error: ')} ({where})" if where else first.removeprefix("error: ")


def _checked(entry: str, reply: Reply) -> Any:
    if reply.status == "rejected":
        raise TransformRejected(reply.message or "The request was refused by a transform.")
    if reply.status != "ok":
        raise TransformFailed(f"The transform's {entry} failed: {summary(reply.message)}")
    if isinstance(reply.value, dict) or (entry == CHUNK and reply.value is None):
        return reply.value
    raise TransformFailed(f"The transform's {entry} must return a dict.")


def _each_checked(entry: str, reply: Reply) -> list[Any]:
    if reply.status != "ok" or not isinstance(reply.value, list):
        _checked(entry, reply)  # raises for a failed reply
        raise TransformFailed(f"The transform's {entry} answered no list.")
    return [_checked(entry, Reply("ok", value)) for value in reply.value]


class Transforms:
    """The scripts' table and the workers that run them."""

    def __init__(self, pool: WorkerPool, timeout_ms: int) -> None:
        self.pool = pool
        self.timeout_ms = timeout_ms
        self.table = TransformTable(pool.start)

    async def apply(self, script: Script, entry: str, value: dict[str, Any], ctx: Context) -> Any:
        """``entry(value, ctx)``'s result; ``value`` itself when it failed and the script says
        skip (a ``fail()`` is a decision, never skipped)."""
        call = Call(script.key, script.source, entry, [value, ctx.value()], self.timeout_ms)
        try:
            return _checked(entry, await self.pool.run(call))
        except TransformFailed:
            if not script.skip_on_error:
                raise
            log.warning("transform_skipped", transform_id=script.id, entry=entry)
            return value

    async def apply_each(
        self, script: Script, entry: str, values: list[dict[str, Any]], ctx: Context
    ) -> list[Any]:
        """``entry`` on each of ``values`` in one worker call; ``values`` themselves when it
        failed and the script says skip."""
        call = Call(
            script.key, script.source, entry, [values, ctx.value()], self.timeout_ms, each=True
        )
        try:
            return _each_checked(entry, await self.pool.run(call))
        except TransformFailed:
            if not script.skip_on_error:
                raise
            log.warning("transform_skipped", transform_id=script.id, entry=entry)
            return values

    async def validate(self, source: str, entries: list[str]) -> None:
        """Load ``source`` in a worker under the same limits and check it defines ``entries``:
        400 with the interpreter's message (line and column) when it does not."""
        call = Call(source_key(0, source), source, "", [], self.timeout_ms, entries)
        try:
            reply = await self.pool.run(call)
        except TransformFailed as exc:  # its top-level code killed or stalled its worker
            raise InvalidRequest(
                f"The script does not load: {exc.message}", param="source"
            ) from exc
        if reply.status != "ok":
            raise InvalidRequest(f"The script does not load: {reply.message}", param="source")

    async def trial(self, source: str, entry: str, sample: Any, ctx: Context) -> Reply:
        """``entry(sample, ctx)`` of ``source``, as the worker answered (the console's test)."""
        call = Call(source_key(0, source), source, entry, [sample, ctx.value()], self.timeout_ms)
        try:
            return await self.pool.run(call)
        except TransformFailed as exc:
            return Reply("error", message=exc.message)
