"""The in-memory directory: keys → principals, model ids → models (with their deployments),
and fallback chains.

It is rebuilt from one storage snapshot every few seconds (so rows edited by hand are picked up)
and at once after every admin write, so an authorised request never waits on the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lowart.catalog.entries import Decrypt, Vendors, model_entry, with_deployments
from lowart.model_entry import ModelEntry
from lowart.principal import Principal
from lowart.security.keys import digests_match, hash_key
from lowart.storage.rows import DeploymentRow, Snapshot, UserRow


@dataclass(frozen=True)
class _Index:
    keys: dict[str, tuple[str, Principal]] = field(default_factory=dict)  # hash → (hash, who)
    users: dict[str, UserRow] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    live_keys: frozenset[str] = frozenset()  # ids of keys not revoked


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


def _principal(user: UserRow, key_id: str) -> Principal:
    return Principal(
        user_id=user.user_id,
        key_id=key_id,
        is_admin=user.is_admin,
        active=user.active,
        rpm_limit=user.rpm_limit,
        token_quota=user.token_quota,
        models=frozenset(user.models) if user.models is not None else None,
    )


def build_index(snapshot: Snapshot, decrypt: Decrypt, vendors: Vendors) -> _Index:
    """Pure: the lookup tables for one snapshot (models of unknown vendors are left out)."""
    further: defaultdict[str, list[DeploymentRow]] = defaultdict(list)
    for deployment in snapshot.deployments:
        further[deployment.model_id].append(deployment)
    models = {}
    for row in snapshot.models:
        entry = model_entry(row, decrypt, vendors)
        if entry is not None:
            models[row.model_id] = with_deployments(entry, further[row.model_id], decrypt, vendors)
    users = {u.user_id: u for u in snapshot.users}
    return _Index(
        keys={
            k.key_hash: (k.key_hash, _principal(users[k.user_id], k.id))
            for k in snapshot.keys
            if k.revoked_at is None and k.user_id in users
        },
        users=users,
        models=models,
        chains=_chains(snapshot, models),
        live_keys=frozenset(k.id for k in snapshot.keys if k.revoked_at is None),
    )


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
        return _principal(user, key_id or "") if user is not None else None

    def key_revoked(self, key_id: str | None) -> bool:
        """True for a key that was revoked (or deleted); a job without a key has none to lose."""
        return bool(key_id) and key_id not in self._index.live_keys

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
