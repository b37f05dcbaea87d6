"""Prices per model (``model_prices``): each row a model's prices from a time on."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.money import PRICE_FIELDS, Price
from lowart.storage.engine import reading
from lowart.storage.tables import model_prices

Prices = dict[str, tuple[Price, ...]]  # model id → prices, oldest first

_ORDER = (model_prices.c.model_id, model_prices.c.effective_from)


def price_row(row: RowMapping) -> Price:
    """A row as a ``Price``; a negative amount written by hand counts as 0."""
    amounts = {name: max(int(row[name] or 0), 0) for name in PRICE_FIELDS}
    return Price(effective_from=float(row["effective_from"]), **amounts)


async def read_prices(conn: AsyncConnection) -> Prices:
    """Every model's prices, oldest first (read with the directory's snapshot)."""
    found: defaultdict[str, list[Price]] = defaultdict(list)
    for row in await conn.execute(sa.select(model_prices).order_by(*_ORDER)):
        found[row.model_id].append(price_row(row._mapping))
    return {model_id: tuple(prices) for model_id, prices in found.items()}


class PriceRepository:
    """Reads and writes ``model_prices``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def all(self) -> Prices:
        async with reading(self._engine) as conn:
            return await read_prices(conn)

    async def history(self, model_id: str) -> tuple[Price, ...]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(model_prices)
                .where(model_prices.c.model_id == model_id)
                .order_by(model_prices.c.effective_from)
            )
        return tuple(price_row(r._mapping) for r in rows)

    async def put(self, model_id: str, price: Price) -> None:
        """Set the model's prices from ``price.effective_from`` on (replacing a row that starts
        at the same instant); earlier rows stay, so history keeps its prices."""
        t = model_prices.c
        values = {name: getattr(price, name) for name in PRICE_FIELDS}
        async with self._engine.begin() as conn:
            await conn.execute(
                model_prices.delete().where(
                    t.model_id == model_id, t.effective_from == price.effective_from
                )
            )
            await conn.execute(
                model_prices.insert().values(
                    model_id=model_id, effective_from=price.effective_from, **values
                )
            )

    async def delete(self, model_id: str, effective_from: float) -> bool:
        """Remove one row of a model's prices; False when there was none."""
        t = model_prices.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                model_prices.delete().where(
                    t.model_id == model_id, t.effective_from == effective_from
                )
            )
        return result.rowcount > 0
