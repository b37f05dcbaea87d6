"""Budgets at admission: every budget that applies holds the request's worst-case cost, and the
real cost replaces the hold when the request ends (docs/api.md, "Budgets").

A budget's period is a key of the budget ledger (``user:alice:2026-12``), the same ledger as the
token quota (in memory, or the Redis scripts when scaled out), so a new period is a new key with
nothing spent: periods reset by themselves. The period is read from the gateway's clock at
admission; a request counts in the period in which it was admitted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lowart.catalog.directory import Directory
from lowart.errors import QuotaExceeded
from lowart.limits.base import QuotaLedger, Reservation
from lowart.model_entry import ModelEntry
from lowart.money import PER, Budget, decimal_string, period_of, price_at
from lowart.principal import Principal
from lowart.storage.budgets import ledger_key, split_key
from lowart.telemetry.metrics import Metrics

TOKENS = "tokens-"  # the scopes of budgets counted in tokens: token quotas with a period


@dataclass(slots=True)
class Hold:
    """One budget's share of a request: its ledger key and the reservation held there."""

    key: str
    reservation: Reservation
    in_tokens: bool = False  # a token quota's: counted in tokens, not money


def worst_case(chain: Sequence[ModelEntry], tokens: int, images: int, when: float) -> int:
    """The most the request can cost: its token reservation at the highest token price of its
    chain, plus its images at the highest image price (micro-units, rounded up)."""
    prices = [p for p in (price_at(m.prices, when) for m in chain) if p is not None]
    if not prices:
        return 0
    rate = max(p.highest_token_rate for p in prices)
    image = max(p.image for p in prices)
    return -(-tokens * rate // PER) + images * image


def _refusal(scope: str, owner: str, budget: Budget, ends_at: float | None, currency: str) -> str:
    if scope.startswith(TOKENS):
        amount = f"{budget.amount} tokens"
        what = f"The {scope.removeprefix(TOKENS)} token quota of '{owner}' ({amount} "
    else:
        amount = f"{decimal_string(budget.amount)} {currency}"
        what = f"The {scope} budget of '{owner}' ({amount} "
    what += f"per {budget.period})" if budget.period != "total" else "in total)"
    if ends_at is None:
        return f"{what} is spent; it does not reset."
    resets = dt.datetime.fromtimestamp(ends_at, dt.UTC).isoformat().replace("+00:00", "Z")
    return f"{what} is spent; it resets at {resets}."


class BudgetGate:
    """Holds and settles a request's cost against each of its budgets."""

    def __init__(
        self,
        ledger: QuotaLedger,
        directory: Directory,
        metrics: Metrics,
        *,
        tz: ZoneInfo,
        currency: str,
        clock: Callable[[], float],
    ) -> None:
        self._ledger = ledger
        self._directory = directory
        self._metrics = metrics
        self.tz = tz
        self._currency = currency
        self.clock = clock

    async def hold(self, principal: Principal, want: int, tokens: int, now: float) -> list[Hold]:
        """Hold ``want`` micro-units (``tokens`` on a token quota) on every budget of the
        caller; all must have room, so the most restrictive decides. A refusal returns what was
        held and raises 429."""
        holds: list[Hold] = []
        for scope, owner, budget in principal.budgets:
            period = period_of(budget.period, now, self.tz)
            key = ledger_key(scope, owner, period.label)
            spent = self._directory.spent(key)
            in_tokens = scope.startswith(TOKENS)
            amount = tokens if in_tokens else want
            reservation = await self._ledger.reserve(key, budget.amount, spent, amount)
            if reservation is None:
                await self.settle(holds, 0, 0)
                self._metrics.rate_limited.labels(reason="budget").inc()
                raise QuotaExceeded(_refusal(scope, owner, budget, period.ends_at, self._currency))
            holds.append(Hold(key, reservation, in_tokens))
        return holds

    def team_standings(self) -> list[tuple[str, int, int]]:
        """(team, budget, spent) of each team's budget in its current period (metrics)."""
        now, found = self.clock(), []
        for key, spent, budget in self._directory.standings():
            scope, owner, label = split_key(key)
            if scope == "team" and label == period_of(budget.period, now, self.tz).label:
                found.append((owner, budget.amount, spent))
        return found

    async def settle(self, holds: Sequence[Hold], cost: int, tokens: int) -> None:
        """Replace each hold with the real cost, or tokens (0: the request served nothing)."""
        for hold in holds:
            await self._ledger.settle(hold.reservation, tokens if hold.in_tokens else cost)
