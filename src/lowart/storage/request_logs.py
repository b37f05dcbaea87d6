"""Request logs: batched inserts of redacted bodies, and the admin's searches over them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import request_logs

SUMMARY = [c for c in request_logs.c if c.name not in ("request_body", "response_body")]


@dataclass(frozen=True, slots=True)
class RequestLogFilter:
    """What ``GET /admin/request-logs`` searches by (each optional)."""

    request_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    since: float | None = None  # Unix seconds, inclusive
    until: float | None = None  # Unix seconds, exclusive

    def where(self) -> list[sa.ColumnElement[bool]]:
        c = request_logs.c
        found: list[sa.ColumnElement[bool]] = []
        for column, value in ((c.request_id, self.request_id), (c.user_id, self.user_id)):
            if value is not None:
                found.append(column == value)
        if self.model is not None:
            found.append(c.model == self.model)
        if self.since is not None:
            found.append(c.created_at >= self.since)
        if self.until is not None:
            found.append(c.created_at < self.until)
        return found


class RequestLogRepository:
    """The ``request_logs`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write a batch of rows in one transaction."""
        if not rows:
            return
        async with self._engine.begin() as conn:
            await conn.execute(request_logs.insert(), list(rows))

    async def search(
        self, flt: RequestLogFilter, limit: int, after: int | None
    ) -> list[dict[str, Any]]:
        """Summaries (no bodies), newest first, older than the entry ``after`` (a cursor)."""
        query = sa.select(*SUMMARY).where(*flt.where())
        if after is not None:
            query = query.where(request_logs.c.id < after)
        query = query.order_by(request_logs.c.id.desc()).limit(limit)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [dict(r._mapping) for r in rows]

    async def of_request(self, request_id: str) -> dict[str, Any] | None:
        """The latest entry of one request, bodies included."""
        query = (
            sa.select(request_logs)
            .where(request_logs.c.request_id == request_id)
            .order_by(request_logs.c.id.desc())
            .limit(1)
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row is not None else None
