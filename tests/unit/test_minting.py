"""A key a user mints never goes beyond the key that mints it, nor its user (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowart.catalog.minting import minted_limits
from lowart.errors import InvalidRequest
from lowart.money import Budget
from lowart.principal import Principal

MODELS = ("a", "b", "c", "d")
limit = st.none() | st.integers(0, 1_000)
models = st.none() | st.frozensets(st.sampled_from(MODELS))
budgets = st.lists(
    st.tuples(
        st.sampled_from(("user", "key", "team")),
        st.just("x"),
        st.builds(Budget, st.integers(0, 10**7), st.sampled_from(("day", "month", "total"))),
    ),
    max_size=3,
    unique_by=lambda b: b[0],
).map(tuple)
callers = st.builds(
    Principal,
    user_id=st.just("u"),
    key_id=st.just("k"),
    is_admin=st.booleans(),
    active=st.just(True),
    rpm_limit=limit,
    token_quota=st.none(),
    models=models,
    budgets=budgets,
    tpm_limit=limit,
    key_rpm_limit=limit,
    key_tpm_limit=limit,
    expires_at=st.none() | st.floats(1e9, 2e9),
)
asks = st.fixed_dictionaries(
    {},
    optional={
        "models": st.lists(st.sampled_from(MODELS), max_size=4),
        "rpm_limit": st.integers(0, 2_000),
        "tpm_limit": st.integers(0, 2_000),
        "budget": st.integers(0, 2 * 10**7),
        "budget_period": st.sampled_from(("day", "week", "month", "total")),
        "expires_at": st.floats(1e9, 3e9),
    },
)


def _within(value: int | None, *caps: int | None) -> bool:
    bounds = [c for c in caps if c is not None]
    return not bounds or (value is not None and value <= min(bounds))


@given(callers, asks)
def test_a_minted_key_never_exceeds_its_minter(caller: Principal, asked: dict[str, Any]) -> None:
    try:
        limits = minted_limits(caller, asked)
    except InvalidRequest as exc:
        assert exc.param in asked  # refused: for a field it asked beyond the caller's rights
        return
    if caller.models is not None:
        assert limits["models"] is not None and set(limits["models"]) <= caller.models
    assert _within(limits["rpm_limit"], caller.rpm_limit, caller.key_rpm_limit)
    assert _within(limits["tpm_limit"], caller.tpm_limit, caller.key_tpm_limit)
    if any(scope == "key" for scope, _, _ in caller.budgets) or "budget" in asked:
        assert limits["budget"] is not None
        assert all(limits["budget"] <= b.amount for _, _, b in caller.budgets)
    if caller.expires_at is not None:
        assert limits["expires_at"] is not None and limits["expires_at"] <= caller.expires_at
    for name in ("rpm_limit", "tpm_limit", "budget", "expires_at"):
        if name in asked:
            assert limits[name] == asked[name]  # what was asked and allowed is what is stored


def test_a_request_beyond_the_callers_limit_names_the_field() -> None:
    caller = Principal("u", "k", False, True, 10, None, frozenset({"a"}), key_tpm_limit=100)
    for asked, field in (
        ({"rpm_limit": 11}, "rpm_limit"),
        ({"tpm_limit": 101}, "tpm_limit"),
        ({"models": ["a", "b"]}, "models"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            minted_limits(caller, asked)
        assert raised.value.param == field
    assert minted_limits(caller, {}) | {"budget_period": "month"} == {
        "models": ["a"],
        "rpm_limit": 10,
        "tpm_limit": 100,
        "budget": None,
        "budget_period": "month",
        "expires_at": None,
    }
