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
    team_id: str | None = None
    team_rpm_limit: int | None = None
    team_tpm_limit: int | None = None

    @property
    def counts_tokens(self) -> bool:
        """A TPM limit applies (the user's, the key's or the team's)."""
        limits = (self.tpm_limit, self.key_tpm_limit, self.team_tpm_limit)
        return any(limit is not None for limit in limits)

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models
