"""Who a key speaks for, pure: its user's limits, its own, and its user's team's, as one
``Principal`` (docs/api.md, "Keys and their limits", "Teams")."""

from __future__ import annotations

from collections.abc import Mapping

from lowart.money import TOTAL, Budget
from lowart.principal import Principal
from lowart.storage.rows import KeyRow, TeamRow, UserRow

Budgets = list[tuple[str, str, Budget]]


def _within(*lists: tuple[str, ...] | None) -> frozenset[str] | None:
    """The models on every list given (None: no list, every model)."""
    found: frozenset[str] | None = None
    for models in lists:
        if models is not None:
            found = frozenset(models) if found is None else found & frozenset(models)
    return found


def _budgets(user: UserRow, key: KeyRow | None, team: TeamRow | None) -> Budgets:
    """Every budget that applies; a token quota with a period is a budget counted in tokens."""
    budgets: Budgets = []
    if user.budget is not None:
        budgets.append(("user", user.user_id, user.budget))
    if key is not None and key.budget is not None:
        budgets.append(("key", key.id, key.budget))
    if team is not None and team.budget is not None:
        budgets.append(("team", team.team_id, team.budget))
    if user.token_quota is not None and user.token_quota_period != TOTAL:
        budgets.append(
            ("tokens-user", user.user_id, Budget(user.token_quota, user.token_quota_period))
        )
    if team is not None and team.token_quota is not None:
        budgets.append(("tokens-team", team.team_id, Budget(team.token_quota, TOTAL)))
    return budgets


def principal_of(
    user: UserRow, key_id: str, key: KeyRow | None, teams: Mapping[str, TeamRow]
) -> Principal:
    team = teams.get(user.team_id or "")
    per_period = user.token_quota_period != TOTAL  # then a budget in tokens, above
    return Principal(
        user_id=user.user_id,
        key_id=key_id,
        is_admin=user.is_admin,
        active=user.active,
        rpm_limit=user.rpm_limit,
        token_quota=None if per_period else user.token_quota,
        models=_within(user.models, key.models if key else None, team.models if team else None),
        budgets=tuple(_budgets(user, key, team)),
        tpm_limit=user.tpm_limit,
        key_rpm_limit=key.rpm_limit if key is not None else None,
        key_tpm_limit=key.tpm_limit if key is not None else None,
        expires_at=key.expires_at if key is not None else None,
        team_id=team.team_id if team is not None else None,
        team_rpm_limit=team.rpm_limit if team is not None else None,
        team_tpm_limit=team.tpm_limit if team is not None else None,
    )
