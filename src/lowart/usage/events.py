"""One upstream attempt's usage, as recorded."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

STATUSES = ("ok", "error", "partial", "cancelled")


@dataclass(slots=True)  # per request: frozen ones cost more to build
class UsageEvent:
    """A row of ``usage_records``: one upstream attempt."""

    request_id: str
    user_id: str
    key_id: str | None
    requested_model: str
    served_model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    status: str
    latency_ms: float | None
    ttft_ms: float | None
    created_at: float
    reservation_id: str = ""  # the shared quota ledger's settlement this row completes
    deployment: str = "default"  # which of the served model's deployments answered
    cache_read_tokens: int = 0  # part of prompt_tokens
    cache_write_tokens: int = 0  # part of prompt_tokens
    cost: int = 0  # micro-units of CURRENCY, at the prices in effect at admission
    budget_keys: tuple[str, ...] = ()  # the budget ledger keys the cost counts against
    budget_holds: tuple[str, ...] = ()  # their reservations' ids (shared ledger), same order
    team_id: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def billed_tokens(self) -> int:
        """What the user is charged: an ``error`` row's tokens (the prompt estimate of an answer
        that broke after it began) are for reconciling with the vendor, never charged."""
        return billed_tokens(self.status, self.prompt_tokens, self.completion_tokens)

    def row(self) -> dict[str, Any]:
        """The ``usage_records`` row (built by hand: ``dataclasses.asdict`` is slow)."""
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "key_id": self.key_id,
            "requested_model": self.requested_model,
            "served_model": self.served_model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated": int(self.estimated),
            "status": self.status,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "created_at": self.created_at,
            "deployment": self.deployment,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost": self.cost,
            "team_id": self.team_id,
            # not columns: what the batch adds to budget_spend (kept when a batch is spooled)
            "budget_keys": self.budget_keys,
            "budget_holds": self.budget_holds,
        }


def billed_tokens(status: str, prompt_tokens: int, completion_tokens: int) -> int:
    """A row's charged tokens: all of them, except on an ``error`` row."""
    return 0 if status == "error" else prompt_tokens + completion_tokens


TOKENS = "tokens-"  # budget scopes counted in tokens (dispatch/budgets.py)


def spend_of(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What rows add to each budget (by ledger key: money, or tokens for a token quota), and the
    settlements that complete them."""
    spent: defaultdict[str, int] = defaultdict(int)
    holds: defaultdict[str, list[str]] = defaultdict(list)
    for row in rows:
        cost = row.get("cost", 0)
        tokens = billed_tokens(row["status"], row["prompt_tokens"], row["completion_tokens"])
        for key, hold in zip_longest(row.get("budget_keys", ()), row.get("budget_holds", ())):
            if key is None:
                continue
            amount = tokens if key.startswith(TOKENS) else cost
            spent[key] += amount
            if hold and amount:
                holds[key].append(hold)
    return dict(spent), dict(holds)
