"""Teams and their members (``teams``, ``users.team_id``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.codec import dumps, models_of
from lowart.storage.engine import reading
from lowart.storage.rows import TeamRow
from lowart.storage.tables import teams, users
from lowart.storage.users import budget_of

TEAM_FIELDS = (
    "name",
    "models",
    "rpm_limit",
    "tpm_limit",
    "token_quota",
    "budget",
    "budget_period",
)


def team_row(row: RowMapping) -> TeamRow:
    return TeamRow(
        team_id=row["team_id"],
        name=row["name"],
        models=models_of(row["models"], row["team_id"]),
        rpm_limit=row["rpm_limit"],
        tpm_limit=row["tpm_limit"],
        token_quota=row["token_quota"],
        budget=budget_of(row),
        created_at=float(row["created_at"]),
    )


def _values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: fields[name] for name in TEAM_FIELDS if name in fields}
    if values.get("models") is not None:
        values["models"] = dumps(list(values["models"]))
    return values


async def read_teams(conn: AsyncConnection) -> tuple[TeamRow, ...]:
    rows = await conn.execute(sa.select(teams).order_by(teams.c.team_id))
    return tuple(team_row(r._mapping) for r in rows)


class TeamRepository:
    """Reads and writes ``teams`` and who belongs to them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_teams(self) -> list[TeamRow]:
        async with reading(self._engine) as conn:
            return list(await read_teams(conn))

    async def get(self, team_id: str) -> TeamRow | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(sa.select(teams).where(teams.c.team_id == team_id))).first()
        return team_row(row._mapping) if row else None

    async def create(self, team_id: str, fields: Mapping[str, Any]) -> TeamRow | None:
        """A new team; None when the id is taken."""
        async with self._engine.begin() as conn:
            taken = (
                await conn.execute(sa.select(teams.c.team_id).where(teams.c.team_id == team_id))
            ).first()
            if taken:
                return None
            await conn.execute(
                teams.insert().values(team_id=team_id, created_at=time.time(), **_values(fields))
            )
        return await self.get(team_id)

    async def update(self, team_id: str, fields: Mapping[str, Any]) -> TeamRow | None:
        values = _values(fields)
        if values:
            async with self._engine.begin() as conn:
                await conn.execute(teams.update().where(teams.c.team_id == team_id).values(values))
        return await self.get(team_id)

    async def delete(self, team_id: str) -> bool:
        """Remove the team; its members belong to none (their usage history stays)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                users.update().where(users.c.team_id == team_id).values(team_id=None)
            )
            result = await conn.execute(teams.delete().where(teams.c.team_id == team_id))
        return result.rowcount > 0

    async def members(self, team_id: str) -> list[str]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(users.c.user_id)
                .where(users.c.team_id == team_id)
                .order_by(users.c.user_id)
            )
        return [r.user_id for r in rows]

    async def set_team(self, user_id: str, team_id: str | None, *, only_from: str | None) -> str:
        """Put the user in ``team_id`` (None: in no team) if its team is ``only_from`` now.
        Returns ``"ok"``, ``"no_user"`` or the team the user is in instead."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(sa.select(users.c.team_id).where(users.c.user_id == user_id))
            ).first()
            if row is None:
                return "no_user"
            if row.team_id not in (only_from, team_id):
                return str(row.team_id)
            await conn.execute(
                users.update().where(users.c.user_id == user_id).values(team_id=team_id)
            )
        return "ok"
