"""Budget alerts waiting for delivery (``budget_alerts``): one row per (budget, period,
threshold), so raising one twice, from any instance, keeps one (docs/api.md, "Budget alerts")."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import budget_alerts


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    payload: str
    attempts: int


class AlertRepository:
    """Raises alerts once and hands out the ones due for a delivery attempt."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def known(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` were raised already."""
        if not ids:
            return set()
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(budget_alerts.c.id).where(budget_alerts.c.id.in_(ids))
            )
        return {r.id for r in rows}

    async def raise_alert(self, alert_id: str, payload: str, now: float) -> bool:
        """Record an alert to deliver; False when it exists (raised here or elsewhere)."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    budget_alerts.insert().values(
                        id=alert_id, payload=payload, status="pending", next_at=now, created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    async def claim_due(self, now: float, lease_s: float, limit: int = 20) -> list[Alert]:
        """Pending alerts due now, each claimed for ``lease_s`` (another instance skips it)."""
        t = budget_alerts.c
        async with reading(self._engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(t.id, t.payload, t.attempts)
                    .where(t.status == "pending", t.next_at <= now)
                    .order_by(t.next_at)
                    .limit(limit)
                )
            ).all()
        claimed = []
        async with self._engine.begin() as conn:
            for row in rows:
                result = await conn.execute(
                    budget_alerts.update()
                    .where(t.id == row.id, t.status == "pending", t.next_at <= now)
                    .values(next_at=now + lease_s)
                )
                if result.rowcount:
                    claimed.append(Alert(row.id, row.payload, int(row.attempts)))
        return claimed

    async def delivered(self, alert_id: str, now: float) -> None:
        t = budget_alerts.c
        async with self._engine.begin() as conn:
            await conn.execute(
                budget_alerts.update()
                .where(t.id == alert_id)
                .values(status="delivered", delivered_at=now, attempts=t.attempts + 1)
            )

    async def failed(self, alert_id: str, next_at: float) -> None:
        t = budget_alerts.c
        async with self._engine.begin() as conn:
            await conn.execute(
                budget_alerts.update()
                .where(t.id == alert_id)
                .values(next_at=next_at, attempts=t.attempts + 1)
            )
