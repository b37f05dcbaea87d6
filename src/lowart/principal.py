"""Who is calling: a key's user and the limits that apply, as the directory resolves it."""

from __future__ import annotations

from dataclasses import dataclass

from lowart.money import Budget


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's user and the limits that apply."""

    user_id: str
    key_id: str
    is_admin: bool
    active: bool
    rpm_limit: int | None
    token_quota: int | None
    models: frozenset[str] | None
    budgets: tuple[tuple[str, str, Budget], ...] = ()  # (scope, owner id, budget), every one
    tpm_limit: int | None = None  # the user's
    key_rpm_limit: int | None = None  # the key's own, within the user's
    key_tpm_limit: int | None = None
    expires_at: float | None = None  # the key's expiry, Unix seconds

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models
