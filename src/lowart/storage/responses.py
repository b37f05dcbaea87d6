"""Stored responses of the Responses API (docs/api.md, "Responses"): one row per response a
caller asked to keep (``store``), read back by id, by its owner only, until it expires.

A conversation is a chain of rows linked by ``previous_response_id``; ``history`` walks it back
and returns its items oldest first: each turn's input items, then its output items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import responses as table


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response: its Response object and the input items of its own turn."""

    id: str
    user_id: str
    model: str
    previous_response_id: str | None
    input_items: list[dict[str, Any]]
    response: dict[str, Any]
    job_id: str | None
    session_id: str | None
    created_at: float
    deployment: str | None = None  # the deployment that served it: a continuation prefers it


class ResponseStore:
    """Writes, reads and deletes ``responses`` rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_s: float,
        max_history: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._retention_s = retention_s
        self._max_history = max_history
        self._clock = clock

    async def save(self, stored: StoredResponse) -> None:
        """Write a response, or replace it (a background response, when its job ends)."""
        values = {
            "id": stored.id,
            "user_id": stored.user_id,
            "model": stored.model,
            "previous_response_id": stored.previous_response_id,
            "input_items": msgspec.json.encode(stored.input_items),
            "response": msgspec.json.encode(stored.response),
            "job_id": stored.job_id,
            "session_id": stored.session_id,
            "created_at": stored.created_at,
            "deployment": stored.deployment,
            "expires_at": stored.created_at + self._retention_s,
        }
        async with self._engine.begin() as conn:
            await conn.execute(table.delete().where(table.c.id == stored.id))
            await conn.execute(table.insert().values(**values))

    async def update_response(self, response_id: str, response: dict[str, Any]) -> None:
        """Replace the Response object of a stored response (a background one's new status)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                table.update()
                .where(table.c.id == response_id)
                .values(response=msgspec.json.encode(response))
            )

    async def get(self, user_id: str, response_id: str) -> StoredResponse | None:
        """The caller's own response, unless it expired (another user's is None: a 404)."""
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    sa.select(table).where(
                        table.c.id == response_id,
                        table.c.user_id == user_id,
                        table.c.expires_at > self._clock(),
                    )
                )
            ).first()
        if row is None:
            return None
        return StoredResponse(
            id=row.id,
            user_id=row.user_id,
            model=row.model,
            previous_response_id=row.previous_response_id,
            input_items=msgspec.json.decode(row.input_items),
            response=msgspec.json.decode(row.response),
            job_id=row.job_id,
            session_id=row.session_id,
            created_at=row.created_at,
            deployment=row.deployment,
        )

    async def delete(self, user_id: str, response_id: str) -> bool:
        """Delete the caller's own response; False when there is none."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                table.delete().where(table.c.id == response_id, table.c.user_id == user_id)
            )
        return bool(result.rowcount)

    async def chain(self, user_id: str, response_id: str) -> list[StoredResponse] | None:
        """The responses of a conversation up to ``response_id``, oldest first; None when it
        (or a response it continues) is missing, expired or another user's."""
        found: list[StoredResponse] = []
        next_id: str | None = response_id
        while next_id is not None:
            if len(found) >= self._max_history:
                return None
            stored = await self.get(user_id, next_id)
            if stored is None:
                return None
            found.append(stored)
            next_id = stored.previous_response_id
        found.reverse()
        return found
