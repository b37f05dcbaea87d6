"""A model's further deployments (docs/api.md, "Deployments"): the ``deployments`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.codec import dumps, params_of
from lowart.storage.engine import reading
from lowart.storage.rows import DeploymentRow, utcnow
from lowart.storage.tables import deployments

DEPLOYMENT_FIELDS = (
    "vendor_type",
    "base_url",
    "api_key",
    "upstream_model",
    "params",
    "weight",
    "enabled",
    "rpm_cap",
    "tpm_cap",
)


def _positive(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


def deployment_row(row: RowMapping) -> DeploymentRow:
    weight = row["weight"]
    return DeploymentRow(
        model_id=row["model_id"],
        id=row["id"],
        vendor_type=str(row["vendor_type"] or ""),
        base_url=str(row["base_url"] or ""),
        api_key=row["api_key"] or None,
        upstream_model=row["upstream_model"] or None,
        params=params_of(row["params"], f"{row['model_id']}/{row['id']}"),
        weight=float(weight) if weight is not None and weight >= 0 else 1.0,
        enabled=bool(row["enabled"]),
        rpm_cap=_positive(row["rpm_cap"]),
        tpm_cap=_positive(row["tpm_cap"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: fields[name] for name in DEPLOYMENT_FIELDS if name in fields}
    if "params" in values and values["params"] is not None:
        values["params"] = dumps(values["params"])
    if "enabled" in values:
        values["enabled"] = int(bool(values["enabled"]))
    return values


def _one(model_id: str, deployment_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(deployments.c.model_id == model_id, deployments.c.id == deployment_id)


class DeploymentRepository:
    """Reads and writes ``deployments``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_for(self, model_id: str) -> list[DeploymentRow]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(deployments)
                .where(deployments.c.model_id == model_id)
                .order_by(deployments.c.id)
            )
        return [deployment_row(r._mapping) for r in rows]

    async def get(self, model_id: str, deployment_id: str) -> DeploymentRow | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(sa.select(deployments).where(_one(model_id, deployment_id)))
            ).first()
        return deployment_row(row._mapping) if row else None

    async def create(
        self, model_id: str, deployment_id: str, fields: Mapping[str, Any]
    ) -> DeploymentRow | None:
        """Insert a deployment; None when the model already has one by that id."""
        async with self._engine.begin() as conn:
            taken = (
                await conn.execute(sa.select(deployments.c.id).where(_one(model_id, deployment_id)))
            ).first()
            if taken:
                return None
            await conn.execute(
                deployments.insert().values(
                    model_id=model_id, id=deployment_id, **_column_values(fields)
                )
            )
            row = await conn.execute(sa.select(deployments).where(_one(model_id, deployment_id)))
        return deployment_row(row.one()._mapping)

    async def update(
        self, model_id: str, deployment_id: str, fields: Mapping[str, Any]
    ) -> DeploymentRow | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                deployments.update()
                .where(_one(model_id, deployment_id))
                .values(**_column_values(fields), updated_at=utcnow())
            )
            if result.rowcount == 0:
                return None
            row = await conn.execute(sa.select(deployments).where(_one(model_id, deployment_id)))
        return deployment_row(row.one()._mapping)

    async def delete(self, model_id: str, deployment_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(deployments.delete().where(_one(model_id, deployment_id)))
        return result.rowcount > 0
