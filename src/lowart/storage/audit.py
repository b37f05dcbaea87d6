"""The admin audit log's rows (docs/api.md, "Admin audit log"): written once per admin write,
read newest first with filters and a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import admin_audit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin write: who, what, on which object, and what changed (secrets already masked)."""

    at: float
    actor: str
    actor_key_id: str | None
    action: str
    target: str | None
    changes: dict[str, Any]
    client_address: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``GET /admin/audit`` selects; ``before``: the cursor (rows with a smaller id)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None
    limit: int = 100


class AuditRepository:
    """Appends to and reads ``admin_audit``; nothing here updates or deletes a row."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, entry: AuditEntry) -> None:
        values = {
            "at": entry.at,
            "actor": entry.actor,
            "actor_key_id": entry.actor_key_id,
            "action": entry.action,
            "target": entry.target,
            "changes": msgspec.json.encode(entry.changes).decode(),
            "client_address": entry.client_address,
            "request_id": entry.request_id,
        }
        async with self._engine.begin() as conn:
            await conn.execute(admin_audit.insert().values(**values))

    async def find(self, flt: AuditFilter) -> list[dict[str, Any]]:
        """The matching rows, newest first, at most ``flt.limit``."""
        c = admin_audit.c
        conditions: list[sa.ColumnElement[bool]] = []
        for column, value in ((c.actor, flt.actor), (c.action, flt.action), (c.target, flt.target)):
            if value is not None:
                conditions.append(column == value)
        if flt.since is not None:
            conditions.append(c.at >= flt.since)
        if flt.until is not None:
            conditions.append(c.at < flt.until)
        if flt.before is not None:
            conditions.append(c.id < flt.before)
        query = sa.select(admin_audit).where(*conditions).order_by(c.id.desc()).limit(flt.limit)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_row(dict(row._mapping)) for row in rows]


def _row(values: dict[str, Any]) -> dict[str, Any]:
    values["changes"] = msgspec.json.decode(values["changes"])
    return values
