"""What each budget spent per period (``budget_spend``), keyed as the budget ledger keys it:
``<scope>:<owner>:<period>`` (docs/api.md, "Budgets")."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import budget_spend


def ledger_key(scope: str, owner: str, period: str) -> str:
    """The one spelling of a budget's period, in the ledger and in ``budget_spend``."""
    return f"{scope}:{owner}:{period}"


def split_key(key: str) -> tuple[str, str, str]:
    """(scope, owner, period) of a ledger key; an owner id may itself hold ``:``."""
    scope, rest = key.split(":", 1)
    owner, period = rest.rsplit(":", 1)
    return scope, owner, period


async def read_spent(conn: AsyncConnection, periods: Collection[str]) -> dict[str, int]:
    """The spend of every budget in the given periods (the current ones), by ledger key."""
    if not periods:
        return {}
    t = budget_spend.c
    rows = await conn.execute(sa.select(budget_spend).where(t.period.in_(sorted(periods))))
    return {ledger_key(r.scope, r.owner, r.period): int(r.spent) for r in rows}


async def add_spent(conn: AsyncConnection, deltas: Mapping[str, int]) -> None:
    """Add each budget's new spend, in the caller's transaction (the usage batch's)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for key, delta in sorted(deltas.items()):  # one order: concurrent batches cannot deadlock
        if not delta:
            continue
        scope, owner, period = split_key(key)
        insert: Any = dialect.insert(budget_spend).values(
            scope=scope, owner=owner, period=period, spent=delta
        )
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["scope", "owner", "period"],
                set_={"spent": budget_spend.c.spent + insert.excluded.spent},
            )
        )


class BudgetSpend:
    """Reads ``budget_spend`` for reports."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def spent(self, keys: Collection[str]) -> dict[str, int]:
        """The spend of each ledger key asked for (0 when none is recorded)."""
        found = dict.fromkeys(keys, 0)
        t = budget_spend.c
        async with reading(self._engine) as conn:
            for key in keys:
                scope, owner, period = split_key(key)
                row = (
                    await conn.execute(
                        sa.select(t.spent).where(
                            t.scope == scope, t.owner == owner, t.period == period
                        )
                    )
                ).first()
                found[key] = int(row.spent) if row else 0
        return found
