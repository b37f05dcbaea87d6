"""MCP servers, tool policies, confirmation sessions and the tool audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import mcp_servers, tool_audit, tool_policies, tool_sessions


@dataclass(frozen=True, slots=True)
class ServerRow:
    name: str
    transport: str
    command: str | None
    args: str | None  # JSON
    env: str | None  # encrypted
    url: str | None
    headers: str | None  # encrypted
    created_at: float


@dataclass(frozen=True, slots=True)
class PolicyRow:
    id: int
    tool_name: str
    server: str | None
    user_id: str | None
    policy: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    user_id: str
    job_id: str | None
    state: str  # JSON
    pending: str  # JSON
    status: str
    expires_at: float
    created_at: float
    updated_at: float


class ToolRepository:
    """Reads and writes the tool tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- servers ---------------------------------------------------------------------------

    async def put_server(self, row: ServerRow) -> None:
        """Register a server, replacing one of the same name."""
        async with self._engine.begin() as conn:
            await conn.execute(mcp_servers.delete().where(mcp_servers.c.name == row.name))
            await conn.execute(
                mcp_servers.insert().values({f: getattr(row, f) for f in ServerRow.__slots__})
            )

    async def servers(self) -> list[ServerRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(sa.select(mcp_servers).order_by(mcp_servers.c.name))
        return [ServerRow(**dict(r._mapping)) for r in rows]

    async def delete_server(self, name: str) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(mcp_servers.delete().where(mcp_servers.c.name == name))
        return done.rowcount > 0

    # -- policies --------------------------------------------------------------------------

    async def put_policy(
        self, tool_name: str, server: str | None, user_id: str | None, policy: str, now: float
    ) -> PolicyRow:
        """Set the policy of one (tool, server, user) key, replacing an earlier row."""
        key = _policy_key(tool_name, server, user_id)
        async with self._engine.begin() as conn:
            await conn.execute(tool_policies.delete().where(*key))
            await conn.execute(
                tool_policies.insert().values(
                    tool_name=tool_name,
                    server=server,
                    user_id=user_id,
                    policy=policy,
                    created_at=now,
                )
            )
            row = (await conn.execute(sa.select(tool_policies).where(*key))).one()
        return PolicyRow(**dict(row._mapping))

    async def policies(self) -> list[PolicyRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(sa.select(tool_policies).order_by(tool_policies.c.id))
        return [PolicyRow(**dict(r._mapping)) for r in rows]

    async def delete_policy(self, tool_name: str, server: str | None, user_id: str | None) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(
                tool_policies.delete().where(*_policy_key(tool_name, server, user_id))
            )
        return done.rowcount > 0

    # -- sessions --------------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                tool_sessions.insert().values({f: getattr(row, f) for f in SessionRow.__slots__})
            )

    async def session(self, session_id: str, user_id: str) -> SessionRow | None:
        """The caller's session; another user's is as absent as an unknown one."""
        query = sa.select(tool_sessions).where(
            tool_sessions.c.session_id == session_id, tool_sessions.c.user_id == user_id
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return SessionRow(**dict(row._mapping)) if row else None

    async def pending_sessions(self, user_id: str, now: float) -> list[SessionRow]:
        query = (
            sa.select(tool_sessions)
            .where(
                tool_sessions.c.user_id == user_id,
                tool_sessions.c.status == "pending",
                tool_sessions.c.expires_at > now,
            )
            .order_by(tool_sessions.c.created_at)
        )
        async with reading(self._engine) as conn:
            rows = await conn.execute(query)
        return [SessionRow(**dict(r._mapping)) for r in rows]

    async def claim_session(self, session_id: str, user_id: str, now: float) -> bool:
        """Take a pending, unexpired session for confirming: true for exactly one caller."""
        async with self._engine.begin() as conn:
            done = await conn.execute(
                tool_sessions.update()
                .where(
                    tool_sessions.c.session_id == session_id,
                    tool_sessions.c.user_id == user_id,
                    tool_sessions.c.status == "pending",
                    tool_sessions.c.expires_at > now,
                )
                .values(status="confirming", updated_at=now)
            )
        return done.rowcount > 0

    async def set_session_status(
        self, session_id: str, status: str, now: float, *, only_from: str | None = None
    ) -> None:
        """Move a session to ``status``; with ``only_from``, only from that status."""
        conditions = [tool_sessions.c.session_id == session_id]
        if only_from is not None:
            conditions.append(tool_sessions.c.status == only_from)
        async with self._engine.begin() as conn:
            await conn.execute(
                tool_sessions.update().where(*conditions).values(status=status, updated_at=now)
            )

    async def expire_sessions(self, now: float) -> list[str]:
        """Mark pending sessions past their expiry; the ids of those that just expired."""
        async with self._engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        sa.select(tool_sessions.c.session_id).where(
                            tool_sessions.c.status == "pending", tool_sessions.c.expires_at <= now
                        )
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                await conn.execute(
                    tool_sessions.update()
                    .where(tool_sessions.c.session_id.in_(ids), tool_sessions.c.status == "pending")
                    .values(status="expired", updated_at=now)
                )
        return list(ids)

    # -- audit -----------------------------------------------------------------------------

    async def audit(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            async with self._engine.begin() as conn:
                await conn.execute(tool_audit.insert(), list(rows))


def _policy_key(
    tool_name: str, server: str | None, user_id: str | None
) -> list[sa.ColumnElement[bool]]:
    def same(column: sa.Column[Any], value: str | None) -> sa.ColumnElement[bool]:
        return column.is_(None) if value is None else column == value

    return [
        tool_policies.c.tool_name == tool_name,
        same(tool_policies.c.server, server),
        same(tool_policies.c.user_id, user_id),
    ]
