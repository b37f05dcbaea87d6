"""Users and their keys: creating them and issuing keys, for the admin API, the CLI and the
bootstrap admin alike (raw keys are returned once and only their hashes are stored)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lowart.errors import Conflict
from lowart.security.keys import display_prefix, generate_key, hash_key, new_id
from lowart.storage.rows import KeyRow, UserRow
from lowart.storage.users import UserRepository


async def issue_key(
    users: UserRepository,
    user_id: str,
    name: str | None,
    raw_key: str | None = None,
    limits: Mapping[str, Any] | None = None,
) -> tuple[KeyRow, str]:
    """Store a new key's hash (with its own ``limits``); the raw key is returned once and never
    stored."""
    key = raw_key or generate_key()
    row = await users.add_key(
        user_id, new_id("key"), hash_key(key), display_prefix(key), name, limits=limits
    )
    return row, key


async def upsert_user(
    users: UserRepository, user_id: str, fields: Mapping[str, Any]
) -> tuple[UserRow, str | None]:
    """Create or update a user; a new user gets a first key, returned once."""
    row, created = await users.upsert(user_id, fields)
    if not created:
        return row, None
    _, key = await issue_key(users, user_id, "default")
    return row, key


async def create_user(
    users: UserRepository, user_id: str, fields: Mapping[str, Any]
) -> tuple[UserRow, str]:
    """Create a new user and its first key (returned once). An existing user is a conflict and
    is left as it was: changing one is an update, never a side effect of a create."""
    row = await users.create(user_id, fields)
    if row is None:
        raise Conflict(f"User '{user_id}' already exists; update it to change its limits.")
    _, key = await issue_key(users, user_id, "default")
    return row, key


async def reset_admin_key(users: UserRepository, user_id: str) -> tuple[KeyRow, str]:
    """A fresh key for the bootstrap admin, returned once: its earlier keys are revoked, and
    the user is an active admin again (created if it was removed by hand)."""
    await users.upsert(user_id, {"is_admin": True, "status": "active"})
    await users.revoke_keys(user_id)
    return await issue_key(users, user_id, "reset")
