"""Transform scripts (docs/transforms.md): the rows of ``transforms``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.rows import TransformRow, utcnow
from lowart.storage.tables import transforms

MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds on PostgreSQL

TRANSFORM_FIELDS = (
    "model_id",
    "deployment",
    "source",
    "on_request",
    "on_response",
    "on_chunk",
    "on_error",
    "enabled",
)
_FLAGS = ("on_request", "on_response", "on_chunk", "enabled")


def transform_row(row: RowMapping) -> TransformRow:
    return TransformRow(
        id=int(row["id"]),
        model_id=row["model_id"] or None,
        deployment=row["deployment"] or None,
        source=str(row["source"] or ""),
        on_request=bool(row["on_request"]),
        on_response=bool(row["on_response"]),
        on_chunk=bool(row["on_chunk"]),
        on_error=str(row["on_error"] or "fail").strip().lower(),
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: fields[name] for name in TRANSFORM_FIELDS if name in fields}
    for flag in _FLAGS:
        if flag in values:
            values[flag] = int(bool(values[flag]))
    return values


async def load_transforms(conn: AsyncConnection) -> tuple[TransformRow, ...]:
    """Every row, in id order (the snapshot's read)."""
    rows = await conn.execute(sa.select(transforms).order_by(transforms.c.id))
    return tuple(transform_row(r._mapping) for r in rows)


class TransformRepository:
    """Reads and writes ``transforms``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, transform_id: int) -> TransformRow | None:
        if not 0 < transform_id <= MAX_ID:
            return None  # no such row, and no out-of-range parameter for PostgreSQL
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(sa.select(transforms).where(transforms.c.id == transform_id))
            ).first()
        return transform_row(row._mapping) if row else None

    async def list_transforms(self) -> list[TransformRow]:
        async with reading(self._engine) as conn:
            return list(await load_transforms(conn))

    async def create(self, fields: Mapping[str, Any]) -> TransformRow:
        async with self._engine.begin() as conn:
            result = await conn.execute(transforms.insert().values(**_column_values(fields)))
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            row = (await conn.execute(sa.select(transforms).where(transforms.c.id == new_id))).one()
        return transform_row(row._mapping)

    async def update(self, transform_id: int, fields: Mapping[str, Any]) -> TransformRow | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                transforms.update()
                .where(transforms.c.id == transform_id)
                .values(**_column_values(fields), updated_at=utcnow())
            )
            if result.rowcount == 0:
                return None
            row = (
                await conn.execute(sa.select(transforms).where(transforms.c.id == transform_id))
            ).one()
        return transform_row(row._mapping)

    async def delete(self, transform_id: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(transforms.delete().where(transforms.c.id == transform_id))
        return result.rowcount > 0
