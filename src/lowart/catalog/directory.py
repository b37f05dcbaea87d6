"""The in-memory directory: keys → principals, model ids → models (with their deployments),
and fallback chains.

It is rebuilt from one storage snapshot every few seconds (so rows edited by hand are picked up)
and at once after every admin write, so an authorised request never waits on the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lowart.catalog.entries import Decrypt, Vendors, model_entry, with_deployments
from lowart.catalog.principals import principal_of
from lowart.model_entry import ModelEntry
from lowart.money import Budget
from lowart.principal import Principal
from lowart.security.keys import digests_match, hash_key
from lowart.storage.budgets import split_key
from lowart.storage.rows import DeploymentRow, KeyRow, Snapshot, TeamRow, UserRow


@dataclass(frozen=True)
class _Index:
    keys: dict[str, tuple[str, Principal]] = field(default_factory=dict)  # hash → (hash, who)
    users: dict[str, UserRow] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    live_keys: dict[str, KeyRow] = field(default_factory=dict)  # keys not revoked, by id
    spent: dict[str, int] = field(default_factory=dict)  # budget ledger key → spent (snapshot)
    teams: dict[str, TeamRow] = field(default_factory=dict)


def _chains(snapshot: Snapshot, models: dict[str, ModelEntry]) -> dict[str, tuple[str, ...]]:
    chains: dict[str, list[str]] = {}
    ordered = sorted(snapshot.fallbacks, key=lambda f: (f.primary_model_id, f.priority, f.id))
    for fb in ordered:  # lower priority first; ties keep insertion order
        chain = chains.setdefault(fb.primary_model_id, [])
        target = fb.fallback_model_id
        if target == fb.primary_model_id or target not in models or target in chain:
            continue  # self-references and unknown ids written by hand are skipped
        chain.append(target)
    return {primary: tuple(chain) for primary, chain in chains.items()}


def build_index(snapshot: Snapshot, decrypt: Decrypt, vendors: Vendors) -> _Index:
    """Pure: the lookup tables for one snapshot (models of unknown vendors are left out)."""
    further: defaultdict[str, list[DeploymentRow]] = defaultdict(list)
    for deployment in snapshot.deployments:
        further[deployment.model_id].append(deployment)
    models = {}
    for row in snapshot.models:
        entry = model_entry(row, decrypt, vendors, snapshot.prices.get(row.model_id, ()))
        if entry is not None:
            models[row.model_id] = with_deployments(entry, further[row.model_id], decrypt, vendors)
    users = {u.user_id: u for u in snapshot.users}
    teams = {t.team_id: t for t in snapshot.teams}
    return _Index(
        keys={
            k.key_hash: (k.key_hash, principal_of(users[k.user_id], k.id, k, teams))
            for k in snapshot.keys
            if k.revoked_at is None and k.user_id in users
        },
        users=users,
        models=models,
        chains=_chains(snapshot, models),
        live_keys={k.id: k for k in snapshot.keys if k.revoked_at is None},
        spent=snapshot.spent,
        teams=teams,
    )


def budget_of_scope(index: _Index, scope: str, owner: str) -> Budget | None:
    """The budget a ledger key's scope and owner name now (None: it is gone)."""
    user, team = index.users.get(owner), index.teams.get(owner)
    key = index.live_keys.get(owner)
    if scope == "tokens-user" and user is not None and user.token_quota is not None:
        return Budget(user.token_quota, user.token_quota_period)
    if scope == "tokens-team" and team is not None and team.token_quota is not None:
        return Budget(team.token_quota, "total")
    row = {"user": user, "key": key, "team": team}.get(scope)
    return row.budget if row is not None else None


class Directory:
    """Lookups served from memory; ``apply`` swaps in a new snapshot atomically."""

    def __init__(self, decrypt: Decrypt, vendors: Vendors) -> None:
        self._decrypt = decrypt
        self._vendors = vendors
        self._index = _Index()

    def apply(self, snapshot: Snapshot) -> None:
        self._index = build_index(snapshot, self._decrypt, self._vendors)

    def principal(self, raw_key: str) -> Principal | None:
        """The principal for a presented key, or None for unknown and revoked keys."""
        digest = hash_key(raw_key)
        found = self._index.keys.get(digest)
        if found is None or not digests_match(found[0], digest):
            return None
        return found[1]

    def principal_of_user(self, user_id: str, key_id: str | None) -> Principal | None:
        """The principal a job runs as: its user as of now (a disabled user stays disabled)."""
        user = self._index.users.get(user_id)
        if user is None:
            return None
        key = self._index.live_keys.get(key_id or "")
        return principal_of(user, key_id or "", key, self._index.teams)

    def key_revoked(self, key_id: str | None) -> bool:
        """True for a key that was revoked (or deleted); a job without a key has none to lose."""
        return bool(key_id) and key_id not in self._index.live_keys

    def spent(self, ledger_key: str) -> int:
        """A budget's spend in a period as of the last snapshot (0 for a period it missed)."""
        return self._index.spent.get(ledger_key, 0)

    def standings(self) -> list[tuple[str, int, Budget]]:
        """Each budget's spend in the periods of the last snapshot: (ledger key, spent, the
        budget it counts against), for the budgets that still exist."""
        found = []
        for key, spent in self._index.spent.items():
            scope, owner, _ = split_key(key)
            budget = budget_of_scope(self._index, scope, owner)
            if budget is not None:
                found.append((key, spent, budget))
        return found

    def team(self, team_id: str | None) -> TeamRow | None:
        return self._index.teams.get(team_id or "")

    def user(self, user_id: str) -> UserRow | None:
        return self._index.users.get(user_id)

    def token_used(self, user_id: str) -> int:
        """The settled ``token_used`` as of the last snapshot."""
        user = self._index.users.get(user_id)
        return user.token_used if user else 0

    def model(self, model_id: str) -> ModelEntry | None:
        """An enabled model, or None."""
        entry = self._index.models.get(model_id)
        return entry if entry is not None and entry.enabled else None

    def model_ids(self) -> list[str]:
        return sorted(self._index.models)

    def logged_models(self) -> frozenset[str]:
        """The models whose requests are logged: ``params.request_log`` is ``true``
        (docs/operations.md, "Request logs")."""
        return frozenset(
            m.model_id for m in self._index.models.values() if m.params.get("request_log") is True
        )

    def visible_models(self, principal: Principal) -> list[ModelEntry]:
        """The enabled models this caller may use."""
        return [
            m for m in self._index.models.values() if m.enabled and principal.may_use(m.model_id)
        ]

    def chain(self, model_id: str) -> list[ModelEntry]:
        """The model followed by its enabled fallbacks, in order (not followed transitively)."""
        first = self.model(model_id)
        if first is None:
            return []
        rest = (self.model(fb) for fb in self._index.chains.get(model_id, ()))
        return [first, *(m for m in rest if m is not None)]
