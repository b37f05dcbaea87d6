"""Users and their API keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.money import PERIODS, Budget
from lowart.storage.codec import dumps, models_of
from lowart.storage.engine import reading
from lowart.storage.rows import KeyRow, UserRow, utcnow
from lowart.storage.tables import api_keys, users

USER_FIELDS = (
    "name",
    "rpm_limit",
    "token_quota",
    "models",
    "status",
    "token_used",
    "is_admin",
    "budget",
    "budget_period",
    "tpm_limit",
    "team_id",
    "token_quota_period",
)

KEY_LIMITS = ("budget", "budget_period", "rpm_limit", "tpm_limit", "models", "expires_at")


def budget_of(row: RowMapping) -> Budget | None:
    """A row's budget; a period written by hand that is none of ours counts as ``month``."""
    amount = row["budget"]
    if amount is None:
        return None
    period = row["budget_period"] if row["budget_period"] in PERIODS else "month"
    return Budget(max(int(amount), 0), period)


def user_row(row: RowMapping) -> UserRow:
    return UserRow(
        user_id=row["user_id"],
        name=row["name"],
        is_admin=bool(row["is_admin"]),
        status=str(row["status"] or "active"),
        rpm_limit=row["rpm_limit"],
        token_quota=row["token_quota"],
        token_used=int(row["token_used"] or 0),
        models=models_of(row["models"], row["user_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        budget=budget_of(row),
        tpm_limit=row["tpm_limit"],
        team_id=row["team_id"],
        token_quota_period=row["token_quota_period"]
        if row["token_quota_period"] in PERIODS
        else "total",
    )


def key_row(row: RowMapping) -> KeyRow:
    return KeyRow(
        id=row["id"],
        user_id=row["user_id"],
        key_hash=row["key_hash"],
        prefix=row["prefix"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        budget=budget_of(row),
        rpm_limit=row["rpm_limit"],
        tpm_limit=row["tpm_limit"],
        models=models_of(row["models"], row["id"]),
        expires_at=row["expires_at"],
    )


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: fields[name] for name in USER_FIELDS if name in fields}
    if "models" in values and values["models"] is not None:
        values["models"] = dumps(list(values["models"]))
    if "is_admin" in values:
        values["is_admin"] = int(bool(values["is_admin"]))
    return values


class UserRepository:
    """Reads and writes ``users`` and ``api_keys``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str) -> UserRow | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).first()
        return user_row(row._mapping) if row else None

    async def list_users(self) -> list[UserRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(users).order_by(users.c.created_at, users.c.user_id)
            )
        return [user_row(r._mapping) for r in rows]

    async def upsert(self, user_id: str, fields: Mapping[str, Any]) -> tuple[UserRow, bool]:
        """Create the user with ``fields``, or update those fields. Returns (row, created)."""
        values = _column_values(fields)
        async with self._engine.begin() as conn:
            exists = (
                await conn.execute(sa.select(users.c.user_id).where(users.c.user_id == user_id))
            ).first()
            if exists:
                if values:
                    await conn.execute(
                        users.update()
                        .where(users.c.user_id == user_id)
                        .values(**values, updated_at=utcnow())
                    )
            else:
                await conn.execute(users.insert().values(user_id=user_id, **values))
            row = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).one()
        return user_row(row._mapping), not exists

    async def create(self, user_id: str, fields: Mapping[str, Any]) -> UserRow | None:
        """Create the user with ``fields``; None (and nothing changed) when it exists."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(users.insert().values(user_id=user_id, **_column_values(fields)))
                row = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).one()
        except sa.exc.IntegrityError:
            return None
        return user_row(row._mapping)

    async def update(self, user_id: str, fields: Mapping[str, Any]) -> UserRow | None:
        """Update an existing user; None when there is no such user."""
        values = _column_values(fields)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                users.update()
                .where(users.c.user_id == user_id)
                .values(**values, updated_at=utcnow())
            )
            if result.rowcount == 0:
                return None
            row = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).one()
        return user_row(row._mapping)

    async def disable(self, user_id: str) -> bool:
        """Disable the user and revoke every key; the usage history stays."""
        now = utcnow()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                users.update()
                .where(users.c.user_id == user_id)
                .values(status="disabled", updated_at=now)
            )
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount > 0

    async def any_admin(self) -> bool:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(sa.select(users.c.user_id).where(users.c.is_admin == 1))
            ).first()
        return row is not None

    async def add_key(
        self,
        user_id: str,
        key_id: str,
        key_hash: str,
        prefix: str,
        name: str | None,
        *,
        limits: Mapping[str, Any] | None = None,
    ) -> KeyRow:
        """A new key; ``limits``: its own (``KEY_LIMITS`` columns)."""
        values = {k: v for k, v in (limits or {}).items() if k in KEY_LIMITS}
        if values.get("models") is not None:
            values["models"] = dumps(list(values["models"]))
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    user_id=user_id,
                    key_hash=key_hash,
                    prefix=prefix,
                    name=name,
                    created_at=utcnow(),
                    **values,
                )
            )
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).one()
        return key_row(row._mapping)

    async def revoke_keys(self, user_id: str) -> int:
        """Revoke every live key of the user; returns how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return int(result.rowcount)

    async def list_keys(self, user_id: str) -> list[KeyRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.user_id == user_id)
                .order_by(api_keys.c.created_at, api_keys.c.id)
            )
        return [key_row(r._mapping) for r in rows]

    async def key(self, key_id: str) -> KeyRow | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        return key_row(row._mapping) if row else None

    async def revoke_key(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if result.rowcount:
                return True
            exists = (
                await conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id))
            ).first()
        return exists is not None
