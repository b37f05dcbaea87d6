"""Gateway metadata: small key/value facts such as the master-key check value."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import gateway_meta


class MetaRepository:
    """Reads and writes ``gateway_meta``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, key: str) -> str | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(sa.select(gateway_meta.c.value).where(gateway_meta.c.key == key))
            ).first()
        return str(row[0]) if row else None

    async def put_if_absent(self, key: str, value: str) -> bool:
        """Store ``value`` unless the key exists. True when this call stored it."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(sa.select(gateway_meta.c.key).where(gateway_meta.c.key == key))
            ).first()
            if row:
                return False
            await conn.execute(gateway_meta.insert().values(key=key, value=value))
        return True
