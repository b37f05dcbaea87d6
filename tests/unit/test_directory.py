"""The in-memory directory built from hand-made storage snapshots."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from structlog.testing import capture_logs

from lowart.catalog.directory import Directory, build_index
from lowart.model_entry import DEFAULT_CONNECT_S, DEFAULT_IDLE_S, Timeouts, timeouts_of
from lowart.principal import Principal
from lowart.providers.registry import VendorTable
from lowart.security.keys import hash_key
from lowart.security.secretbox import SecretBox
from lowart.storage.rows import FallbackRow, KeyRow, ModelRow, Snapshot, UserRow
from lowart.storage.sealed import vendor_key_context

MASTER = "directory-master-key-0123456789abcdef"
OTHER_MASTER = "some-other-master-key-0123456789abcdef"
BOX = SecretBox(MASTER)
VENDORS = VendorTable().operations()
ALICE_KEY = "lw-alice-key-" + "a" * 33
BOB_KEY = "lw-bob-key-" + "b" * 35
REVOKED_KEY = "lw-revoked-" + "r" * 35
ORPHAN_KEY = "lw-orphan-" + "o" * 36
CAROL_KEY = "lw-carol-" + "c" * 37
T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def user(user_id: str, **fields: Any) -> UserRow:
    values: dict[str, Any] = {
        "name": None,
        "is_admin": False,
        "status": "active",
        "rpm_limit": None,
        "token_quota": None,
        "token_used": 0,
        "models": None,
    }
    return UserRow(user_id=user_id, **(values | fields))


def key(key_id: str, user_id: str, raw: str, revoked: bool = False) -> KeyRow:
    return KeyRow(
        id=key_id,
        user_id=user_id,
        key_hash=hash_key(raw),
        prefix=raw[:7],
        name=None,
        created_at=T0,
        last_used_at=None,
        revoked_at=T0 if revoked else None,
    )


def model(model_id: str, vendor: str = "OpenAI", **fields: Any) -> ModelRow:
    values: dict[str, Any] = {
        "base_url": "https://api.example.com/v1",
        "api_key": None,
        "upstream_model": None,
        "params": {},
        "timeout_s": 600.0,
        "enabled": True,
    }
    return ModelRow(model_id=model_id, vendor_type=vendor, **(values | fields))


def fallback(primary: str, target: str, priority: int, row_id: int) -> FallbackRow:
    return FallbackRow(primary, target, priority, row_id)


def snapshot(
    users: tuple[UserRow, ...] = (),
    keys: tuple[KeyRow, ...] = (),
    models: tuple[ModelRow, ...] = (),
    fallbacks: tuple[FallbackRow, ...] = (),
) -> Snapshot:
    return Snapshot(users=users, keys=keys, models=models, fallbacks=fallbacks)


def directory(snap: Snapshot) -> Directory:
    d = Directory(BOX.decrypt, VENDORS)
    d.apply(snap)
    return d


def ids(entries: list[Any]) -> list[str]:
    return [e.model_id for e in entries]


# --- principals ----------------------------------------------------------------------------


@pytest.fixture
def people() -> Directory:
    return directory(
        snapshot(
            users=(
                user("alice", is_admin=True, rpm_limit=60, token_quota=1000, token_used=12),
                user("bob", status="disabled"),
                user("carol", models=("gpt", "claude")),
            ),
            keys=(
                key("k1", "alice", ALICE_KEY),
                key("k2", "bob", BOB_KEY),
                key("k3", "alice", REVOKED_KEY, revoked=True),
                key("k4", "ghost", ORPHAN_KEY),
                key("k5", "carol", CAROL_KEY),
            ),
        )
    )


def test_principal_by_raw_key(people: Directory) -> None:
    assert people.principal(ALICE_KEY) == Principal(
        user_id="alice",
        key_id="k1",
        is_admin=True,
        active=True,
        rpm_limit=60,
        token_quota=1000,
        models=None,
    )


def test_lookup_is_by_hash_not_by_prefix(people: Directory) -> None:
    assert people.principal(ALICE_KEY[:-1] + "x") is None
    assert people.principal(hash_key(ALICE_KEY)) is None  # the stored hash is not a key


def test_unknown_key(people: Directory) -> None:
    assert people.principal("lw-" + "z" * 43) is None
    assert people.principal("") is None


def test_revoked_key(people: Directory) -> None:
    assert people.principal(REVOKED_KEY) is None


def test_a_revoked_or_deleted_key_is_revoked_for_its_jobs(people: Directory) -> None:
    assert people.key_revoked("k3") and people.key_revoked("k-deleted")
    assert not people.key_revoked("k1") and not people.key_revoked("k2")
    assert not people.key_revoked(None) and not people.key_revoked("")  # a job without a key


def test_key_of_unknown_user(people: Directory) -> None:
    assert people.principal(ORPHAN_KEY) is None


def test_disabled_user_is_an_inactive_principal(people: Directory) -> None:
    principal = people.principal(BOB_KEY)
    assert principal is not None
    assert principal.user_id == "bob"
    assert principal.active is False


def test_user_and_token_used(people: Directory) -> None:
    alice = people.user("alice")
    assert alice is not None
    assert alice.token_quota == 1000
    assert people.token_used("alice") == 12
    assert people.token_used("nobody") == 0
    assert people.user("nobody") is None


def test_apply_replaces_the_previous_snapshot(people: Directory) -> None:
    people.apply(snapshot(users=(user("alice"),), keys=(key("k1", "alice", ALICE_KEY, True),)))
    assert people.principal(ALICE_KEY) is None
    assert people.principal(BOB_KEY) is None


def test_empty_directory() -> None:
    empty = Directory(BOX.decrypt, VENDORS)
    assert empty.principal(ALICE_KEY) is None
    assert empty.model("gpt") is None
    assert empty.chain("gpt") == []
    assert empty.model_ids() == []


# --- models and allowlists -----------------------------------------------------------------


def test_allowlist(people: Directory) -> None:
    carol = people.principal(CAROL_KEY)
    assert carol is not None
    assert carol.models == frozenset({"gpt", "claude"})
    assert carol.may_use("gpt")
    assert not carol.may_use("mock")
    alice = people.principal(ALICE_KEY)
    assert alice is not None
    assert alice.may_use("anything")


def test_empty_allowlist_allows_nothing() -> None:
    d = directory(
        snapshot(
            users=(user("u", models=()),), keys=(key("k", "u", ALICE_KEY),), models=(model("gpt"),)
        )
    )
    principal = d.principal(ALICE_KEY)
    assert principal is not None
    assert not principal.may_use("gpt")
    assert d.visible_models(principal) == []


def test_visible_models_respect_allowlist_and_enabled() -> None:
    d = directory(
        snapshot(
            users=(user("carol", models=("gpt", "claude", "off")), user("root")),
            keys=(key("k1", "carol", CAROL_KEY), key("k2", "root", ALICE_KEY)),
            models=(
                model("gpt"),
                model("claude", "Anthropic"),
                model("mock", "Mock"),
                model("off", enabled=False),
            ),
        )
    )
    carol = d.principal(CAROL_KEY)
    root = d.principal(ALICE_KEY)
    assert carol is not None
    assert root is not None
    assert sorted(ids(d.visible_models(carol))) == ["claude", "gpt"]
    assert sorted(ids(d.visible_models(root))) == ["claude", "gpt", "mock"]


def test_disabled_model_is_hidden() -> None:
    d = directory(snapshot(models=(model("off", enabled=False), model("on"))))
    assert d.model("off") is None
    assert d.model("on") is not None
    assert d.chain("off") == []


def test_unknown_vendor_is_skipped() -> None:
    with capture_logs() as logs:
        d = directory(snapshot(models=(model("weird", "Gemini"), model("gpt"))))
    assert d.model("weird") is None
    assert d.model_ids() == ["gpt"]
    assert any(e["event"] == "model_vendor_unknown" and e["model_id"] == "weird" for e in logs)


@pytest.mark.parametrize(
    ("vendor_type", "vendor"),
    [
        ("openai", "openai"),
        ("OPENAI", "openai"),
        ("OpenAI", "openai"),
        (" OpenAI ", "openai"),
        ("anthropic", "anthropic"),
        ("ComfyUI", "comfyui"),
        ("MOCK", "mock"),
    ],
)
def test_vendor_type_is_case_insensitive(vendor_type: str, vendor: str) -> None:
    entry = directory(snapshot(models=(model("m", vendor_type),))).model("m")
    assert entry is not None
    assert entry.vendor == vendor


def test_model_entry_fields() -> None:
    d = directory(
        snapshot(
            models=(
                model("gpt", base_url="https://api.openai.com/v1/", created_at=T0),
                model("alias", upstream_model="gpt-4o-2024-08-06"),
            )
        )
    )
    gpt = d.model("gpt")
    alias = d.model("alias")
    assert gpt is not None
    assert alias is not None
    assert gpt.base_url == "https://api.openai.com/v1"
    assert gpt.upstream_model == "gpt"
    assert gpt.api_key is None
    assert gpt.created == int(T0.timestamp())
    assert alias.upstream_model == "gpt-4o-2024-08-06"
    assert alias.created == 0


def test_encrypted_api_key_is_decrypted() -> None:
    sealed = BOX.encrypt("sk-real", vendor_key_context("gpt"))
    entry = directory(snapshot(models=(model("gpt", api_key=sealed),))).model("gpt")
    assert entry is not None
    assert entry.api_key == "sk-real"


def test_plain_api_key_is_used_as_is() -> None:
    entry = directory(snapshot(models=(model("gpt", api_key="sk-plain"),))).model("gpt")
    assert entry is not None
    assert entry.api_key == "sk-plain"


def test_undecryptable_api_key_skips_the_model() -> None:
    foreign = SecretBox(OTHER_MASTER).encrypt("sk-other", vendor_key_context("gpt"))
    with capture_logs() as logs:
        d = directory(snapshot(models=(model("gpt", api_key=foreign), model("mock", "Mock"))))
    assert d.model("gpt") is None
    assert d.model_ids() == ["mock"]
    assert any(e["event"] == "model_api_key_undecryptable" for e in logs)


def test_api_key_copied_from_another_row_does_not_decrypt() -> None:
    sealed = BOX.encrypt("sk-a", vendor_key_context("a"))
    d = directory(snapshot(models=(model("a", api_key=sealed), model("b", api_key=sealed))))
    assert d.model("a") is not None
    assert d.model("b") is None


# --- fallback chains -----------------------------------------------------------------------


def _models(*names: str) -> tuple[ModelRow, ...]:
    return tuple(model(name) for name in names)


def test_chain_follows_priority_then_insertion() -> None:
    # Rows in the order storage hands them over: by primary, priority, then insertion id.
    d = directory(
        snapshot(
            models=_models("a", "b", "c", "d", "e"),
            fallbacks=(
                fallback("a", "d", 0, 7),
                fallback("a", "c", 1, 2),
                fallback("a", "b", 1, 5),
                fallback("a", "e", 3, 1),
            ),
        )
    )
    assert ids(d.chain("a")) == ["a", "d", "c", "b", "e"]


def test_chain_order_does_not_depend_on_snapshot_order() -> None:
    d = directory(
        snapshot(
            models=_models("a", "b", "c", "d"),
            fallbacks=(
                fallback("a", "b", 2, 1),
                fallback("a", "c", 1, 9),
                fallback("a", "d", 1, 3),
            ),
        )
    )
    assert ids(d.chain("a")) == ["a", "d", "c", "b"]


def test_chain_without_fallbacks() -> None:
    d = directory(snapshot(models=_models("a")))
    assert ids(d.chain("a")) == ["a"]
    assert d.chain("missing") == []


def test_self_reference_is_skipped() -> None:
    d = directory(
        snapshot(
            models=_models("a", "b"),
            fallbacks=(fallback("a", "a", 0, 1), fallback("a", "b", 1, 2)),
        )
    )
    assert ids(d.chain("a")) == ["a", "b"]


def test_unknown_fallback_ids_are_skipped() -> None:
    d = directory(
        snapshot(
            models=(*_models("a", "b"), model("bad-vendor", "Nope")),
            fallbacks=(
                fallback("a", "ghost", 0, 1),
                fallback("a", "bad-vendor", 1, 2),
                fallback("a", "b", 2, 3),
            ),
        )
    )
    assert ids(d.chain("a")) == ["a", "b"]


def test_duplicate_fallbacks_appear_once() -> None:
    d = directory(
        snapshot(
            models=_models("a", "b", "c"),
            fallbacks=(
                fallback("a", "b", 0, 1),
                fallback("a", "c", 1, 2),
                fallback("a", "b", 2, 3),
            ),
        )
    )
    assert ids(d.chain("a")) == ["a", "b", "c"]


def test_chain_is_not_transitive() -> None:
    d = directory(
        snapshot(
            models=_models("a", "b", "c"),
            fallbacks=(fallback("a", "b", 0, 1), fallback("b", "c", 0, 2)),
        )
    )
    assert ids(d.chain("a")) == ["a", "b"]
    assert ids(d.chain("b")) == ["b", "c"]


def test_mutual_backups() -> None:
    d = directory(
        snapshot(
            models=_models("a", "b"),
            fallbacks=(fallback("a", "b", 0, 1), fallback("b", "a", 0, 2)),
        )
    )
    assert ids(d.chain("a")) == ["a", "b"]
    assert ids(d.chain("b")) == ["b", "a"]


def test_disabled_fallback_is_left_out_of_the_chain() -> None:
    d = directory(
        snapshot(
            models=(model("a"), model("b", enabled=False), model("c")),
            fallbacks=(fallback("a", "b", 0, 1), fallback("a", "c", 1, 2)),
        )
    )
    assert ids(d.chain("a")) == ["a", "c"]


def test_build_index_is_pure() -> None:
    snap = snapshot(
        users=(user("u"),),
        keys=(key("k", "u", ALICE_KEY),),
        models=_models("a", "b"),
        fallbacks=(fallback("a", "b", 0, 1),),
    )
    first, second = build_index(snap, BOX.decrypt, VENDORS), build_index(snap, BOX.decrypt, VENDORS)
    assert first == second
    assert first.chains == {"a": ("b",)}
    assert set(first.keys) == {hash_key(ALICE_KEY)}


# --- timeouts ------------------------------------------------------------------------------


def test_timeouts_defaults() -> None:
    assert timeouts_of({}, 600.0) == Timeouts(
        connect=DEFAULT_CONNECT_S, first_byte=600.0, idle=DEFAULT_IDLE_S, total=600.0
    )
    assert DEFAULT_CONNECT_S == 10.0
    assert DEFAULT_IDLE_S == 120.0


def test_timeouts_overrides() -> None:
    params = {"timeouts": {"connect": 2, "first_byte": 15.5, "idle": 30}}
    assert timeouts_of(params, 300.0) == Timeouts(
        connect=2.0, first_byte=15.5, idle=30.0, total=300
    )


def test_timeouts_are_capped_at_the_total() -> None:
    params = {"timeouts": {"connect": 50, "first_byte": 100, "idle": 500}}
    assert timeouts_of(params, 20.0) == Timeouts(connect=20.0, first_byte=20.0, idle=20.0, total=20)


@pytest.mark.parametrize("bad", [0, -1, "5", True, None, [3]])
def test_invalid_timeout_values_use_defaults(bad: object) -> None:
    params = {"timeouts": {"connect": bad, "first_byte": bad, "idle": bad}}
    assert timeouts_of(params, 600.0) == timeouts_of({}, 600.0)


@pytest.mark.parametrize("params", [{"timeouts": "fast"}, {"timeouts": None}, {"other": 1}])
def test_timeouts_not_an_object_use_defaults(params: dict[str, Any]) -> None:
    assert timeouts_of(params, 600.0) == timeouts_of({}, 600.0)


@pytest.mark.parametrize("total", [0.0, -5.0])
def test_non_positive_total_means_600(total: float) -> None:
    assert timeouts_of({}, total).total == 600.0


def test_model_entry_timeouts_come_from_params_and_timeout_s() -> None:
    d = directory(
        snapshot(models=(model("gpt", timeout_s=90.0, params={"timeouts": {"idle": 5}}),))
    )
    entry = d.model("gpt")
    assert entry is not None
    assert entry.timeouts == Timeouts(connect=10.0, first_byte=90.0, idle=5.0, total=90.0)
