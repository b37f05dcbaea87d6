"""Creating users and keys: shared by the admin API, the CLI and the bootstrap admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lowart.security.keys import display_prefix, generate_key, hash_key, new_id
from lowart.storage.rows import KeyRow, UserRow
from lowart.storage.users import UserRepository


async def issue_key(
    users: UserRepository, user_id: str, name: str | None, raw_key: str | None = None
) -> tuple[KeyRow, str]:
    """Store a new key's hash; the raw key is returned once and never stored."""
    key = raw_key or generate_key()
    row = await users.add_key(user_id, new_id("key"), hash_key(key), display_prefix(key), name)
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
