"""What a key minted by a user may carry: its own limits, never beyond those of the key that
mints it, nor beyond its user's (docs/api.md, "Keys and their limits"). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lowart.errors import InvalidRequest
from lowart.money import Budget
from lowart.principal import Principal


def _cap(requested: int | None, caps: list[int | None], name: str) -> int | None:
    """A limit at most every cap; unset: the tightest cap (None when there is none)."""
    bounds = [c for c in caps if c is not None]
    tightest = min(bounds, default=None)
    if requested is None:
        return tightest
    if tightest is not None and requested > tightest:
        raise InvalidRequest(f"'{name}' may be at most {tightest}, your own limit.", param=name)
    return requested


def _models(requested: list[str] | None, allowed: frozenset[str] | None) -> list[str] | None:
    if requested is None:
        return None if allowed is None else sorted(allowed)
    beyond = sorted(set(requested) - allowed) if allowed is not None else []
    if beyond:
        raise InvalidRequest(
            f"'models' names a model you may not use: '{beyond[0]}'.", param="models"
        )
    return sorted(set(requested))


def _budget(amount: int | None, period: str | None, caller: Principal) -> Budget | None:
    tightest = min((b.amount for _, _, b in caller.budgets), default=None)
    if amount is None:  # the calling key's own budget carries over, within the others
        own = [b for scope, _, b in caller.budgets if scope == "key"]
        return Budget(min(own[0].amount, tightest or 0), own[0].period) if own else None
    if tightest is not None and amount > tightest:
        raise InvalidRequest("'budget' may not exceed your own budget.", param="budget")
    return Budget(amount, period or "month")


def _expiry(requested: float | None, caller: Principal) -> float | None:
    if requested is None:
        return caller.expires_at
    if caller.expires_at is not None and requested > caller.expires_at:
        raise InvalidRequest("'expires_at' may not be after your key's.", param="expires_at")
    return requested


def minted_limits(caller: Principal, requested: Mapping[str, Any]) -> dict[str, Any]:
    """The limits to store on a key ``caller`` mints: each one asked for, checked against the
    caller's, or the caller's own where none is asked for. Raises 400 naming the field."""
    budget = _budget(requested.get("budget"), requested.get("budget_period"), caller)
    return {
        "models": _models(requested.get("models"), caller.models),
        "rpm_limit": _cap(
            requested.get("rpm_limit"), [caller.rpm_limit, caller.key_rpm_limit], "rpm_limit"
        ),
        "tpm_limit": _cap(
            requested.get("tpm_limit"), [caller.tpm_limit, caller.key_tpm_limit], "tpm_limit"
        ),
        "budget": budget.amount if budget is not None else None,
        "budget_period": budget.period if budget is not None else "month",
        "expires_at": _expiry(requested.get("expires_at"), caller),
    }
