"""``lowart keys``: create, list and revoke a user's keys, through the admin API's operations
(``api/admin_users.py``). A new key is shown once; only its hash is stored."""

from __future__ import annotations

import argparse

from lowart.api.admin_users import key_json
from lowart.cli.command import Commands, admin, command, group
from lowart.cli.output import emit_record, emit_rows
from lowart.settings import Settings
from lowart.storage.audit_states import KEY
from lowart.storage.audit_trail import CLI

COLUMNS = ("id", "prefix", "name", "created_at", "last_used_at", "revoked_at")


async def _create(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops, ops.audit.write(CLI, "keys.create", KEY, None) as change:
        row, key = await ops.users.new_key(args.user, args.name)
        change.target = row.id
    emit_record({"user_id": args.user, **key_json(row), "key": key}, args.json)


async def _list(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        rows = await ops.users.keys(args.user)
    emit_rows([key_json(row) for row in rows], COLUMNS, args.json)


async def _revoke(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops, ops.audit.write(CLI, "keys.revoke", KEY, args.key_id):
        await ops.users.revoke(args.key_id)
    emit_record({"id": args.key_id, "revoked": True}, args.json)


def register(commands: Commands) -> None:
    keys = group(commands, "keys", "manage API keys")
    create = command(keys, "create", "create a key for a user and print it (shown once)", _create)
    create.add_argument("--user", required=True, help="the user the key belongs to")
    create.add_argument("--name", help="a name to tell the key by")
    listed = command(keys, "list", "list a user's keys (never the keys themselves)", _list)
    listed.add_argument("--user", required=True, help="whose keys")
    revoke = command(
        keys, "revoke", "revoke a key (a running gateway drops it within CACHE_REFRESH_S)", _revoke
    )
    revoke.add_argument("key_id", help="the key's id (key_…), as `keys list` shows it")
