"""The one read that fills the in-memory caches."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.budgets import read_spent
from lowart.storage.deployments import deployment_row
from lowart.storage.engine import reading
from lowart.storage.models import fallback_row, model_row
from lowart.storage.prices import read_prices
from lowart.storage.rows import Snapshot
from lowart.storage.tables import api_keys, deployments, model_fallbacks, models, users
from lowart.storage.teams import read_teams
from lowart.storage.transforms import load_transforms
from lowart.storage.users import key_row, user_row


async def load_snapshot(engine: AsyncEngine, periods: Collection[str] = ()) -> Snapshot:
    """Users, live keys, models, deployments, fallbacks, prices, transforms and the budgets'
    spend in ``periods`` (the current ones), consistent with each other."""
    async with reading(engine) as conn, conn.begin():
        user_rows = await conn.execute(sa.select(users))
        key_rows = await conn.execute(sa.select(api_keys).where(api_keys.c.revoked_at.is_(None)))
        model_rows = await conn.execute(sa.select(models))
        fb_rows = await conn.execute(
            sa.select(model_fallbacks).order_by(
                model_fallbacks.c.primary_model_id,
                model_fallbacks.c.priority,
                model_fallbacks.c.id,
            )
        )
        dep_rows = await conn.execute(
            sa.select(deployments).order_by(deployments.c.model_id, deployments.c.id)
        )
        return Snapshot(
            users=tuple(user_row(r._mapping) for r in user_rows),
            keys=tuple(key_row(r._mapping) for r in key_rows),
            models=tuple(model_row(r._mapping) for r in model_rows),
            fallbacks=tuple(fallback_row(r._mapping) for r in fb_rows),
            transforms=await load_transforms(conn),
            deployments=tuple(deployment_row(r._mapping) for r in dep_rows),
            prices=await read_prices(conn),
            spent=await read_spent(conn, periods),
            teams=await read_teams(conn),
        )
