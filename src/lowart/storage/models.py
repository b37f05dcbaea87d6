"""Models and their fallback chains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.codec import dumps, params_of
from lowart.storage.engine import reading
from lowart.storage.rows import FallbackRow, ModelRow, utcnow
from lowart.storage.tables import deployments, model_fallbacks, models

MODEL_FIELDS = (
    "vendor_type",
    "base_url",
    "api_key",
    "upstream_model",
    "params",
    "timeout_s",
    "enabled",
)


def model_row(row: RowMapping) -> ModelRow:
    return ModelRow(
        model_id=row["model_id"],
        vendor_type=str(row["vendor_type"] or ""),
        base_url=str(row["base_url"] or ""),
        api_key=row["api_key"] or None,
        upstream_model=row["upstream_model"] or None,
        params=params_of(row["params"], row["model_id"]),
        timeout_s=float(row["timeout_s"] or 600),
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def fallback_row(row: RowMapping) -> FallbackRow:
    return FallbackRow(
        primary_model_id=row["primary_model_id"],
        fallback_model_id=row["fallback_model_id"],
        priority=int(row["priority"] or 0),
        id=int(row["id"]),
    )


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: fields[name] for name in MODEL_FIELDS if name in fields}
    if "params" in values and values["params"] is not None:
        values["params"] = dumps(values["params"])
    if "enabled" in values:
        values["enabled"] = int(bool(values["enabled"]))
    return values


class ModelRepository:
    """Reads and writes ``models`` and ``model_fallbacks``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, model_id: str) -> ModelRow | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(sa.select(models).where(models.c.model_id == model_id))
            ).first()
        return model_row(row._mapping) if row else None

    async def list_models(self) -> list[ModelRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(sa.select(models).order_by(models.c.model_id))
        return [model_row(r._mapping) for r in rows]

    async def create(self, model_id: str, fields: Mapping[str, Any]) -> ModelRow | None:
        """Insert a model; None when the id is taken."""
        async with self._engine.begin() as conn:
            taken = (
                await conn.execute(
                    sa.select(models.c.model_id).where(models.c.model_id == model_id)
                )
            ).first()
            if taken:
                return None
            await conn.execute(models.insert().values(model_id=model_id, **_column_values(fields)))
            row = (await conn.execute(sa.select(models).where(models.c.model_id == model_id))).one()
        return model_row(row._mapping)

    async def update(self, model_id: str, fields: Mapping[str, Any]) -> ModelRow | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                models.update()
                .where(models.c.model_id == model_id)
                .values(**_column_values(fields), updated_at=utcnow())
            )
            if result.rowcount == 0:
                return None
            row = (await conn.execute(sa.select(models).where(models.c.model_id == model_id))).one()
        return model_row(row._mapping)

    async def delete(self, model_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(models.delete().where(models.c.model_id == model_id))
            await conn.execute(deployments.delete().where(deployments.c.model_id == model_id))
            await conn.execute(
                model_fallbacks.delete().where(
                    sa.or_(
                        model_fallbacks.c.primary_model_id == model_id,
                        model_fallbacks.c.fallback_model_id == model_id,
                    )
                )
            )
        return result.rowcount > 0

    async def fallbacks(self, model_id: str) -> list[FallbackRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(model_fallbacks)
                .where(model_fallbacks.c.primary_model_id == model_id)
                .order_by(model_fallbacks.c.priority, model_fallbacks.c.id)
            )
        return [fallback_row(r._mapping) for r in rows]

    async def set_fallbacks(self, model_id: str, chain: Sequence[str]) -> None:
        """Replace a model's chain; position in ``chain`` becomes the priority."""
        async with self._engine.begin() as conn:
            await conn.execute(
                model_fallbacks.delete().where(model_fallbacks.c.primary_model_id == model_id)
            )
            if chain:
                await conn.execute(
                    model_fallbacks.insert(),
                    [
                        {"primary_model_id": model_id, "fallback_model_id": fb, "priority": i}
                        for i, fb in enumerate(chain)
                    ],
                )
